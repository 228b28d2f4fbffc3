"""GLaD: the synthetic set as latents of a frozen generator instead of pixels.

Each synthetic image is a W+ latent `ws` [num_ws, w_dim] and the feature map `f` after
the generator's first k layers; the image is `from_f(ws, f, k)` mapped to [0, 1] pixels
of the data's size and preprocessed as the real images (mean/std, ZCA). The latents
are the state's `images` pytree {"ws", "f"}; the distillation step renders them,
takes the loss gradient with respect to the rendered images, and pulls it back through
the generator with `jax.vjp` (rendering in chunks, each rematerialised, so the
generator's activations are never all held at once). Only ws[:, k + 1:] and f receive
gradients. The generator's params and the preprocessing arrays are step arguments.

Initialisation: per image, ws = mapping(z, class) with z ~ N(0, I) ("sample") or the
mean of the mapping over `average_samples` draws of the class ("average"); f =
to_f(ws, k) with non-finite values replaced and clipped to +-clip.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dd_jax.data.preprocess import Preprocessor
from dd_jax.gan.generator import Generator

Array = jax.Array
Params = Any
INITS = ("sample", "average")


@dataclasses.dataclass(frozen=True, eq=False)
class LatentSpace:
  """Static description of the parameterisation (hashable by identity)."""
  gen: Generator
  layer: int                     # k: f is the feature map after the first k layers
  size: tuple[int, int]          # the data's (H, W)
  channels: int
  chunk: int = 10                # images rendered (and rematerialised) together

  def render(self, prior: Params, pre: dict, latents: dict) -> Array:
    """Network-input images [n, H, W, C] of the latents {"ws", "f"}."""
    ws, f = latents["ws"], latents["f"]
    n = ws.shape[0]
    c = min(self.chunk, n)
    pad = (-n) % c

    @jax.checkpoint
    def one(chunk):
      w, feat = chunk
      images = self.gen.from_f(prior, w, feat, self.layer)
      return to_network(self.gen.to_pixels(images, self.size, self.channels), pre)

    def split(x):
      x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
      return x.reshape((-1, c) + x.shape[1:])

    out = jax.lax.map(one, (split(ws), split(f)))
    return out.reshape((-1,) + out.shape[2:])[:n]


def resolve_layer(layer: int, gen: Generator) -> int:
  """glad.layer, with -1 = the generator's middle layer (GLaD's 12 of ImageNet-128's 26)."""
  k = gen.num_layers // 2 if layer == -1 else layer
  gen.check_layer(k, "glad.layer")
  return k


def preprocessing_arrays(pre: Preprocessor) -> dict:
  """The preprocessing as arrays (arguments of the step, never closed over)."""
  out = {"mean": jnp.asarray(pre.mean, jnp.float32), "std": jnp.asarray(pre.std, jnp.float32)}
  if pre.zca is not None:
    out["zca"] = jnp.asarray(pre.zca, jnp.float32)
    out["zca_mean"] = jnp.asarray(pre.zca_mean, jnp.float32)
  return out


def to_network(pixels: Array, pre: dict) -> Array:
  """[0, 1] pixels -> network input, as `Preprocessor.apply`."""
  x = (pixels - pre["mean"]) / pre["std"]
  if "zca" in pre:
    shape = x.shape
    x = ((x.reshape(shape[0], -1) - pre["zca_mean"]) @ pre["zca"]).reshape(shape)
  return x


def initial_latents(space: LatentSpace, prior: Params, labels: np.ndarray, init: str,
                    seed: int, average_samples: int = 1000, clip: float = 10.0) -> dict:
  """{"ws": [n, num_ws, w_dim], "f": [n, H_k, W_k, C_k]} for class labels [n]."""
  gen = space.gen
  key = jax.random.PRNGKey(seed)
  labels = jnp.asarray(labels, jnp.int32)
  z_dim = gen.spec["z_dim"]
  if init == "sample":
    ws = gen.mapping(prior, jax.random.normal(key, (len(labels), z_dim)), labels)
  else:   # the class average of the mapping
    ws = gen.class_mean_w(prior, key, average_samples)[labels]
  f = jnp.concatenate([gen.to_f(prior, ws[i:i + space.chunk], space.layer)
                       for i in range(0, len(labels), space.chunk)])
  f = jnp.clip(jnp.nan_to_num(f, nan=0.0, posinf=clip, neginf=-clip), -clip, clip)
  return {"ws": ws.astype(jnp.float32), "f": f.astype(jnp.float32)}


def latent_optimizer(lr_w: float, lr_f: float, momentum: float) -> optax.GradientTransformation:
  """SGD with GLaD's separate learning rates for ws and f."""
  return optax.multi_transform(
      {"ws": optax.sgd(lr_w, momentum=momentum or None),
       "f": optax.sgd(lr_f, momentum=momentum or None)}, {"ws": "ws", "f": "f"})
