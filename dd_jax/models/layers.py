"""Layers shared by every architecture: a convolution with a backend-chosen kernel,
the normalisations of the official code, and pooling that floors like PyTorch's.

One convolution definition serves all backends. On CPU, XLA's convolution gradients
inside `lax.scan` (and their second derivatives, which trajectory matching needs) are
far slower than an im2col + matmul formulation of the same math; on GPU/TPU the native
convolution wins. `conv_impl="auto"` picks per backend (benchmarks/conv_kernels.py
measures both). Kernels are stored HWIO in either case, so parameters are identical.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

CONV_IMPLS = ("auto", "im2col", "lax")
NORMS = ("instancenorm", "batchnorm", "layernorm", "none")

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "leakyrelu": lambda x: jax.nn.leaky_relu(x, 0.01),
}


def resolve_conv_impl(impl: str) -> str:
  """Maps "auto" to the fastest formulation for the default backend."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
  if impl == "auto":
    return "im2col" if jax.default_backend() == "cpu" else "lax"
  return impl


def _pad(x: Array, padding: int) -> Array:
  if padding == 0:
    return x
  return jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


def conv2d_im2col(x: Array, kernel: Array, stride: int, padding: int) -> Array:
  """NHWC x HWIO convolution as one matmul over gathered patches.

  Patches are built from kh*kw strided slices of the padded input, so the backward pass
  is made of pads and adds, which XLA's CPU backend handles well (also twice nested).
  """
  kh, kw, cin, cout = kernel.shape
  x = _pad(x, padding)
  n, h, w, _ = x.shape
  oh = (h - kh) // stride + 1
  ow = (w - kw) // stride + 1
  cols = []
  for i in range(kh):
    for j in range(kw):
      cols.append(jax.lax.slice(
          x, (0, i, j, 0),
          (n, i + (oh - 1) * stride + 1, j + (ow - 1) * stride + 1, cin),
          (1, stride, stride, 1)))
  patches = jnp.concatenate(cols, axis=-1)  # [n, oh, ow, kh*kw*cin]
  return patches @ kernel.reshape(kh * kw * cin, cout)


def conv2d_lax(x: Array, kernel: Array, stride: int, padding: int) -> Array:
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), [(padding, padding)] * 2,
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


CONV_FNS: dict[str, Callable[..., Array]] = {
    "im2col": conv2d_im2col,
    "lax": conv2d_lax,
}


def torch_default_init(fan_in: int) -> Callable[..., Array]:
  """PyTorch's default for conv/linear weights and biases: U(-1/sqrt(fan_in), +)."""
  bound = 1.0 / (fan_in ** 0.5)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


class Conv(nn.Module):
  """2-D convolution, NHWC, kernel HWIO, PyTorch's default initialisation."""
  features: int
  kernel_size: int = 3
  stride: int = 1
  padding: int = 1
  use_bias: bool = True
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: Array) -> Array:
    cin = x.shape[-1]
    fan_in = cin * self.kernel_size ** 2
    kernel = self.param("kernel", torch_default_init(fan_in),
                        (self.kernel_size, self.kernel_size, cin, self.features))
    y = CONV_FNS[resolve_conv_impl(self.conv_impl)](
        x, kernel, self.stride, self.padding)
    if self.use_bias:
      y = y + self.param("bias", torch_default_init(fan_in), (self.features,))
    return y


class Dense(nn.Module):
  """Linear layer with PyTorch's default initialisation (kernel stored [in, out])."""
  features: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    fan_in = x.shape[-1]
    kernel = self.param("kernel", torch_default_init(fan_in), (fan_in, self.features))
    bias = self.param("bias", torch_default_init(fan_in), (self.features,))
    return x @ kernel + bias


class Norm(nn.Module):
  """The official code's norm choices, by name.

  instancenorm = GroupNorm with one group per channel (affine), as the official code;
  batchnorm keeps running statistics in the "batch_stats" collection.
  """
  kind: str
  train: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if self.kind == "instancenorm":
      return nn.GroupNorm(num_groups=x.shape[-1], epsilon=1e-5, name="norm")(x)
    if self.kind == "batchnorm":
      return nn.BatchNorm(use_running_average=not self.train, momentum=0.9,
                          epsilon=1e-5, name="norm")(x)
    if self.kind == "layernorm":
      # PyTorch's LayerNorm over (C, H, W): normalise over all but the batch axis.
      return nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3),
                          feature_axes=(1, 2, 3), name="norm")(x)
    if self.kind == "none":
      return x
    raise ValueError(f"norm must be one of {NORMS}, got {self.kind!r}")


def pool2x2(x: Array, kind: str) -> Array:
  """2x2 pooling with stride 2 that floors odd sizes, like torch's Avg/MaxPool2d(2)."""
  if kind == "none":
    return x
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  x = x.reshape(n, h // 2, 2, w // 2, 2, c)
  if kind == "avgpooling":
    return x.mean(axis=(2, 4))
  if kind == "maxpooling":
    return x.max(axis=(2, 4))
  raise ValueError(f"pooling must be one of avgpooling, maxpooling, none; got {kind!r}")


def flatten_chw(x: Array) -> Array:
  """Flattens NHWC features in PyTorch's C-H-W order so dense weights match torch."""
  return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
