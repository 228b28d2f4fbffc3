"""DC (gradient matching) and DM (distribution matching) as pure functions, with PAD's
parameter mask (FIEM) available to both.

DC (Zhao et al. 2021, with DSA): a fresh net per outer step; `outer_loop` times: for each
class, the distance between the gradients of the CE loss on a real batch and on the
class's synthetic images (the official "ours" distance: per output unit, 1 - cosine of
the weight gradients; 1-D parameters such as biases and norm scales are not matched),
summed over classes and layers, updates the images; then the net trains `inner_loop`
steps on the synthetic set. With a parameter mask, masked gradient entries are left out
of the cosines and output units with no entry left are not matched at all: the depth
mask drops the shallow layers' distances.

DM (Zhao & Bilen 2023): a fresh net per step; per class, the squared distance between
the mean embeddings of a real batch and of the synthetic images. Per-layer variant (PAD
FIEM for DM): also the mean output of every block whose parameters the mask keeps (the
deep ones), summed with the embedding's.

Real and synthetic batches of a class get the same DSA transformation (Siamese: one
draw of the parameters for every image of both batches, as the official
`param.Siamese`).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dd_jax import training
from dd_jax.data import augment

Array = jax.Array
Params = Any
Mask = Any

# DC's outer/inner loop lengths by IPC (the official get_loops).
DC_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 10), 40: (40, 15),
            50: (50, 10)}


def siamese_dsa(key, x: Array, strategy: str) -> Array:
  """DSA with one parameter draw shared by every image (call it with the same key on the
  real and the synthetic batch of a class)."""
  if not augment.enabled(strategy):
    return x
  return jax.vmap(lambda img: augment.dsa(key, img[None], strategy)[0])(x)


def _rows(g: Array) -> Array:
  """A weight gradient as [output units, fan-in] (conv HWIO / dense (in, out))."""
  return jnp.moveaxis(g, -1, 0).reshape(g.shape[-1], -1)


def gradient_distance(g_real: Params, g_syn: Params, mask: Mask | None = None) -> Array:
  """DC's layer-wise distance: sum over weight tensors and output units of
  1 - cos(g_real, g_syn); 1-D leaves contribute nothing. `mask` (bool pytree like the
  params) leaves entries out; units with no entry left are skipped."""
  masks = (jax.tree.leaves(mask) if mask is not None
           else [None] * len(jax.tree.leaves(g_real)))
  total = jnp.zeros(())
  for gr, gs, m in zip(jax.tree.leaves(g_real), jax.tree.leaves(g_syn), masks):
    if gr.ndim < 2:
      continue
    a, b = _rows(gr), _rows(gs)
    keep_row = jnp.ones(a.shape[0], bool)
    if m is not None:
      mr = _rows(m)
      a, b = a * mr, b * mr
      keep_row = mr.any(axis=1)
    cos = jnp.sum(a * b, 1) / (jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(b, axis=1) + 1e-6)
    total = total + jnp.sum(jnp.where(keep_row, 1.0 - cos, 0.0))
  return total


def _class_ce(model, params, x, c):
  logits, _ = training.apply(model, params, {}, x, train=True)
  return jnp.mean(training.cross_entropy(logits, jnp.full((x.shape[0],), c, jnp.int32)))


def dc_loss(model: nn.Module, params: Params, real: Array, syn: Array, key,
            strategy: str, mask: Mask | None = None) -> Array:
  """Sum over classes of the gradient distance.

  Args:
    real: [C, B, H, W, ch] a real batch per class; syn: [C, ipc, H, W, ch].
  """
  def one(carry, inputs):
    c, xr, xs, k = inputs
    g_real = jax.lax.stop_gradient(
        jax.grad(_class_ce, argnums=1)(model, params, siamese_dsa(k, xr, strategy), c))
    g_syn = jax.grad(_class_ce, argnums=1)(model, params, siamese_dsa(k, xs, strategy), c)
    return carry + gradient_distance(g_real, g_syn, mask), None

  num_classes = real.shape[0]
  keys = jax.random.split(key, num_classes)
  total, _ = jax.lax.scan(one, jnp.zeros(()), (jnp.arange(num_classes), real, syn, keys))
  return total


def block_features(model: nn.Module, params: Params, x: Array,
                   blocks: tuple[int, ...]) -> list[Array]:
  """The embedding (the flattened last block, DM's) and the mean-able outputs of
  `blocks` (ConvNet block indices, recorded with `sow`)."""
  emb, state = model.apply({"params": params}, x, train=True, features=True,
                           mutable=["intermediates"])
  inter = state.get("intermediates", {})
  return [emb] + [inter[f"block{b}"][0] for b in blocks]


def dm_loss(model: nn.Module, params: Params, real: Array, syn: Array, key,
            strategy: str, blocks: tuple[int, ...] = ()) -> Array:
  """Sum over classes (and over the embedding plus `blocks`) of
  ||mean f(real_c) - mean f(syn_c)||^2."""
  def one(carry, inputs):
    xr, xs, k = inputs
    fr = block_features(model, params, siamese_dsa(k, xr, strategy), blocks)
    fs = block_features(model, params, siamese_dsa(k, xs, strategy), blocks)
    d = sum(jnp.sum(jnp.square(jnp.mean(jax.lax.stop_gradient(a), 0) - jnp.mean(b, 0)))
            for a, b in zip(fr, fs))
    return carry + d, None

  keys = jax.random.split(key, real.shape[0])
  total, _ = jax.lax.scan(one, jnp.zeros(()), (real, syn, keys))
  return total


def kept_blocks(mask: Mask | None, depth: int) -> tuple[int, ...]:
  """Blocks before the last whose conv parameters the mask keeps at least partly (DM's
  per-layer features with FIEM; the last block is the embedding); () without a mask."""
  if mask is None:
    return ()
  return tuple(d for d in range(depth - 1)
               if any(bool(jnp.any(m)) for m in jax.tree.leaves(mask[f"conv{d}"])))
