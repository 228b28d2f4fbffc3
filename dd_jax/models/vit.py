"""A small Vision Transformer for 28/32 px images (the evaluation net of GLaD and H-PD).

The layout of GLaD's `ViTCIFAR` (itself lucidrains' vit-pytorch): non-overlapping
patches (4 px: 7x7 patches at 28 px, 8x8 at 32 px) flattened H-W-C and projected, a class
token and learned position embeddings, `depth` pre-norm blocks (multi-head attention with
`heads` x `dim_head`, then a GELU MLP of width `mlp_dim`), LayerNorm and a linear head on
the class token. GLaD: dim 512, depth 6, 8 heads of 64, MLP 512, dropout 0.1 (`ViT`);
`ViTTiny` (dim 128, depth 4, 4 heads of 32) is the size a CPU trains in minutes.

Dropout is active only in training when the caller passes a "dropout" rng (the
evaluation protocol does); without one the net is deterministic.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dd_jax.errors import ConfigError

Array = jax.Array


class _Block(nn.Module):
  dim: int
  heads: int
  dim_head: int
  mlp_dim: int
  dropout: float

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    b, n, _ = x.shape
    h = nn.LayerNorm(epsilon=1e-5, name="norm_attn")(x)
    qkv = nn.Dense(3 * self.heads * self.dim_head, use_bias=False, name="to_qkv")(h)
    q, k, v = jnp.split(qkv.reshape(b, n, 3, self.heads, self.dim_head), 3, axis=2)
    q, k, v = (t[:, :, 0].transpose(0, 2, 1, 3) for t in (q, k, v))   # [b, heads, n, d]
    attn = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) * self.dim_head ** -0.5, axis=-1)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(b, n, self.heads * self.dim_head)
    out = nn.Dense(self.dim, name="to_out")(out)
    x = x + nn.Dropout(self.dropout)(out, deterministic=deterministic)
    h = nn.LayerNorm(epsilon=1e-5, name="norm_mlp")(x)
    h = nn.Dropout(self.dropout)(jax.nn.gelu(nn.Dense(self.mlp_dim, name="fc0")(h),
                                             approximate=False), deterministic=deterministic)
    h = nn.Dropout(self.dropout)(nn.Dense(self.dim, name="fc1")(h),
                                 deterministic=deterministic)
    return x + h


class ViT(nn.Module):
  num_classes: int
  patch: int = 4
  dim: int = 512
  depth: int = 6
  heads: int = 8
  dim_head: int = 64
  mlp_dim: int = 512
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x: Array, train: bool = True) -> Array:
    b, height, width, channels = x.shape
    p = self.patch
    if height % p or width % p:
      raise ConfigError("model.arch", f"{height}x{width} images do not split into "
                        f"{p}x{p} patches", "use an image size divisible by the patch")
    deterministic = not train or not self.has_rng("dropout")
    x = x.reshape(b, height // p, p, width // p, p, channels).transpose(0, 1, 3, 2, 4, 5)
    x = nn.Dense(self.dim, name="patch_embed")(x.reshape(b, -1, p * p * channels))
    cls = self.param("cls_token", nn.initializers.normal(1.0), (1, 1, self.dim))
    x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, self.dim)), x], axis=1)
    x = x + self.param("pos_embedding", nn.initializers.normal(1.0), (1,) + x.shape[1:])
    x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
    for i in range(self.depth):
      x = _Block(self.dim, self.heads, self.dim_head, self.mlp_dim, self.dropout,
                 name=f"block{i}")(x, deterministic)
    x = nn.LayerNorm(epsilon=1e-5, name="norm_head")(x[:, 0])
    return nn.Dense(self.num_classes, name="head")(x)
