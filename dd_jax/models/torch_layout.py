"""Parameters in the PyTorch order and layout of the official code.

The official code flattens `net.parameters()`: modules in registration order, weight
before bias, conv weights OIHW, dense weights (out, in). Our modules create parameters in
that same order and flatten features C-H-W, so the conversion is per tensor (conv HWIO ->
OIHW, dense (in, out) -> (out, in)) once the creation order is known. JAX re-sorts dict
keys whenever it rebuilds a pytree, so the order is read once, while tracing `init`
(`TorchLayout.of`), and kept as a tuple of paths. A mask ratio over the flat vector (PAD)
therefore cuts at the same place as the official code's.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Params = Any
Path = tuple[str, ...]

# Flax leaf name -> PyTorch parameter name.
_TORCH_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias"}


def _items(tree, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
  """(path, leaf) in the tree's own dict order."""
  if hasattr(tree, "items"):
    for k, v in tree.items():
      yield from _items(v, prefix + (k,))
  else:
    yield prefix, tree


def _get(tree, path: Path):
  for k in path:
    tree = tree[k]
  return tree


def to_torch_layout(leaf):
  if leaf.ndim == 4:   # conv HWIO -> OIHW
    return jnp.transpose(leaf, (3, 2, 0, 1))
  if leaf.ndim == 2:   # dense (in, out) -> (out, in)
    return leaf.T
  if leaf.ndim == 3:   # layer-norm affine over (H, W, C) -> torch's (C, H, W)
    return jnp.transpose(leaf, (2, 0, 1))
  return leaf


def from_torch_layout(leaf, ndim: int):
  if ndim == 4:
    return jnp.transpose(leaf, (2, 3, 1, 0))
  if ndim == 2:
    return leaf.T
  if ndim == 3:
    return jnp.transpose(leaf, (1, 2, 0))
  return leaf


def _torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
  if len(shape) == 4:
    return (shape[3], shape[2], shape[0], shape[1])
  if len(shape) == 2:
    return (shape[1], shape[0])
  if len(shape) == 3:
    return (shape[2], shape[0], shape[1])
  return shape


@dataclasses.dataclass(frozen=True)
class TorchLayout:
  """Parameter paths and shapes of a model, in the official (creation) order."""
  paths: tuple[Path, ...]
  shapes: tuple[tuple[int, ...], ...]

  @staticmethod
  @functools.lru_cache(maxsize=64)
  def of(model: nn.Module, image_shape: tuple[int, ...]) -> "TorchLayout":
    """Reads the creation order while tracing init (no parameters are computed)."""
    found: list[tuple[Path, tuple[int, ...]]] = []

    def init():
      variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1,) + tuple(image_shape)),
                             train=False)
      found.extend((p, tuple(leaf.shape)) for p, leaf in _items(variables["params"]))
      return variables

    jax.eval_shape(init)
    return TorchLayout(tuple(p for p, _ in found), tuple(s for _, s in found))

  @property
  def sizes(self) -> tuple[int, ...]:
    return tuple(int(np.prod(s)) for s in self.shapes)

  @property
  def num_params(self) -> int:
    return sum(self.sizes)

  @property
  def names(self) -> tuple[str, ...]:
    """PyTorch-style dotted names ("conv0.weight", "norm0.norm.bias", ...)."""
    return tuple(".".join(p[:-1] + (_TORCH_NAMES.get(p[-1], p[-1]),)) for p in self.paths)

  def segments(self) -> list[tuple[str, int, int]]:
    """(name, start, size) of every tensor in the flat vector."""
    starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int)
    return [(n, int(s), z) for n, s, z in zip(self.names, starts, self.sizes)]

  def flatten(self, params: Params) -> jax.Array:
    """All parameters as one vector, in the official code's order and layout."""
    return jnp.concatenate([to_torch_layout(_get(params, p)).reshape(-1)
                            for p in self.paths])

  def unflatten(self, vector: jax.Array) -> Params:
    """Inverse of `flatten`: a params dict of our layout."""
    if vector.shape[0] != self.num_params:
      raise ValueError(f"vector has {vector.shape[0]} entries, the model has "
                       f"{self.num_params} parameters")
    out: dict = {}
    offset = 0
    for path, shape, size in zip(self.paths, self.shapes, self.sizes):
      chunk = vector[offset: offset + size].reshape(_torch_shape(shape))
      node = out
      for k in path[:-1]:
        node = node.setdefault(k, {})
      node[path[-1]] = from_torch_layout(chunk, len(shape))
      offset += size
    return out

  def positions(self) -> Params:
    """Each parameter element's index in the flat vector, as an int32 params dict (what
    `dd_jax.losses.make_mask` counts in)."""
    return self.unflatten(jnp.arange(self.num_params, dtype=jnp.int32))

  def state_dict(self, params: Params) -> dict[str, np.ndarray]:
    """A PyTorch-style state dict: dotted names, arrays in torch layout."""
    return {n: np.asarray(to_torch_layout(_get(params, p)))
            for n, p in zip(self.names, self.paths)}

  def from_state_dict(self, state: dict[str, np.ndarray]) -> Params:
    """Params from a PyTorch-style state dict of the same architecture."""
    return self.unflatten(jnp.concatenate(
        [jnp.asarray(state[n]).reshape(-1) for n in self.names]))
