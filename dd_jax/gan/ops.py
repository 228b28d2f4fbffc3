"""The math of a StyleGAN-XL (StyleGAN3-style) generator, as pure functions on NHWC arrays.

Every function takes plain arrays and static numbers (read from a converted
checkpoint's JSON spec), so one definition serves any resolution. Weights keep the
PyTorch layout they are stored in ([out, in] dense, [out, in, kh, kw] conv) and are
rearranged here.

- `fully_connected`: y = x (W g_w)^T + b g_b, then leaky ReLU(0.2) x sqrt(2) ("lrelu").
- `upfirdn2d`: zero-insertion upsampling, zero padding (negative = crop), a true
  convolution with the FIR filter (scaled by gain^(ndim/2)), then keeping every
  `down`-th sample. A separable (1-D) filter becomes one fixed matrix per axis (exact,
  and fast on CPU); a 2-D (radial) filter is a depthwise convolution.
- `filtered_lrelu`: bias, upfirdn (up, gain up^2), leaky ReLU x gain, clamp, upfirdn (down).
- `modulated_conv2d`: StyleGAN2's modulation and demodulation as a scaling of the
  activations around one shared-weight convolution ("full" padding k - 1).
- `fourier_features`: StyleGAN3's synthesis input for a latent w.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from dd_jax.models.layers import CONV_FNS, resolve_conv_impl

Array = jax.Array
SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2


def fully_connected(x: Array, weight: Array, bias: Array | None, weight_gain: float,
                    bias_gain: float, activation: str = "linear") -> Array:
  y = x @ (weight * weight_gain).T
  if bias is not None:
    y = y + bias * bias_gain
  if activation == "lrelu":
    return jax.nn.leaky_relu(y, LRELU_SLOPE) * SQRT2
  if activation != "linear":
    raise ValueError(f"unknown activation {activation!r}")
  return y


def normalize_2nd_moment(x: Array, eps: float = 1e-8) -> Array:
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


@functools.lru_cache(maxsize=256)
def axis_matrix(size: int, taps: tuple[float, ...] | None, up: int, down: int,
                pad_lo: int, pad_hi: int, gain: float) -> np.ndarray:
  """The [out, size] matrix of 1-D upfirdn along one axis (float32, exact: built by
  running the 1-D pipeline on the identity)."""
  eye = np.eye(size, dtype=np.float64)
  up_x = np.zeros((size * up, size))
  up_x[::up] = eye
  lo, hi = max(pad_lo, 0), max(pad_hi, 0)
  padded = np.pad(up_x, ((lo, hi), (0, 0)))
  padded = padded[max(-pad_lo, 0):padded.shape[0] - max(-pad_hi, 0)]
  f = np.asarray([1.0] if taps is None else taps, np.float64) * gain
  kernel = f[::-1]   # true convolution: the filter flipped, then slid
  n = padded.shape[0] - len(kernel) + 1
  if n <= 0:
    raise ValueError(f"upfirdn2d: {size} samples x up {up} with padding ({pad_lo}, "
                     f"{pad_hi}) is shorter than the {len(kernel)}-tap filter")
  filtered = np.stack([kernel @ padded[i:i + len(kernel)] for i in range(n)])
  return filtered[::down].astype(np.float32)


def _taps(f) -> tuple[float, ...] | None:
  return None if f is None else tuple(float(v) for v in np.asarray(f).reshape(-1))


def upfirdn2d(x: Array, f, up: int = 1, down: int = 1,
              padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> Array:
  """StyleGAN's upfirdn2d on NHWC `x`; `f` None, 1-D (separable, applied along width
  then height) or 2-D taps (static NumPy values); padding = (x_lo, x_hi, y_lo, y_hi)."""
  px0, px1, py0, py1 = padding
  f = None if f is None else np.asarray(f, np.float64)
  if f is None or f.ndim == 1:
    per_axis = gain ** 0.5 if f is not None else 1.0
    mh = axis_matrix(x.shape[1], _taps(f), up, down, py0, py1, per_axis)
    mw = axis_matrix(x.shape[2], _taps(f), up, down, px0, px1, per_axis)
    if f is None and gain != 1.0:   # the identity filter carries the whole gain
      mh = mh * np.float32(gain)
    return jnp.einsum("oh,bhwc,pw->bopc", mh, x, mw)
  # 2-D filter: upsample and pad per axis (identity), one depthwise conv, subsample.
  mh = axis_matrix(x.shape[1], None, up, 1, py0, py1, 1.0)
  mw = axis_matrix(x.shape[2], None, up, 1, px0, px1, 1.0)
  x = jnp.einsum("oh,bhwc,pw->bopc", mh, x, mw)
  c = x.shape[-1]
  kernel = np.asarray(f[::-1, ::-1] * gain, np.float32)        # flipped, scaled once
  kernel = np.broadcast_to(kernel[:, :, None, None], kernel.shape + (1, c))
  y = jax.lax.conv_general_dilated(x, jnp.asarray(kernel), (1, 1), "VALID",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                   feature_group_count=c)
  return y[:, ::down, ::down, :]


def filtered_lrelu(x: Array, fu, fd, bias: Array | None, up: int, down: int,
                   padding: tuple[int, int, int, int], gain: float = SQRT2,
                   slope: float = LRELU_SLOPE, clamp: float | None = 256.0) -> Array:
  """StyleGAN3's filtered leaky ReLU (the reference path's order)."""
  if bias is not None:
    x = x + bias
  x = upfirdn2d(x, fu, up=up, padding=padding, gain=float(up * up))
  x = jnp.where(x >= 0, x, x * slope) * gain
  if clamp is not None:
    x = jnp.clip(x, -clamp, clamp)
  return upfirdn2d(x, fd, down=down)


def modulated_conv2d(x: Array, weight: Array, styles: Array, demodulate: bool = True,
                     input_gain: Array | float | None = None,
                     conv_impl: str = "auto") -> Array:
  """x [B, H, W, I], weight [O, I, k, k] (PyTorch layout), styles [B, I] -> [B, H+k-1,
  W+k-1, O]: cross-correlation with padding k-1 of weights modulated per sample.

  With demodulation the weight is first normalised per output channel and the styles
  per sample (the official code divides by one mean over the whole batch; demodulation
  cancels either up to its 1e-8, and per sample keeps an image independent of its
  batch). `input_gain` (1/sqrt(magnitude_ema)) multiplies after demodulation."""
  k = weight.shape[-1]
  w = weight
  if demodulate:
    w = w * jax.lax.rsqrt(jnp.mean(jnp.square(w), axis=(1, 2, 3), keepdims=True))
    styles = styles * jax.lax.rsqrt(jnp.mean(jnp.square(styles), axis=1, keepdims=True))
  kernel = jnp.transpose(w, (2, 3, 1, 0))                      # HWIO
  y = CONV_FNS[resolve_conv_impl(conv_impl)](x * styles[:, None, None, :], kernel, 1, k - 1)
  if demodulate:
    # |W_n[o] * s|^2 summed over (i, kh, kw), per sample: d = rsqrt(... + 1e-8)
    energy = jnp.square(styles) @ jnp.sum(jnp.square(w), axis=(2, 3)).T   # [B, O]
    y = y * jax.lax.rsqrt(energy + 1e-8)[:, None, None, :]
  if input_gain is not None:
    y = y * input_gain
  return y


def fourier_features(w: Array, affine_weight: Array, affine_bias: Array, weight_gain: float,
                     bias_gain: float, freqs: Array, phases: Array, transform: Array,
                     channel_weight: Array, size: tuple[int, int], sampling_rate: float,
                     bandwidth: float) -> Array:
  """StyleGAN3's SynthesisInput for latents w [B, w_dim] -> [B, H, W, C] (size = [W, H])."""
  t = fully_connected(w, affine_weight, affine_bias, weight_gain, bias_gain)   # [B, 4]
  t = t / jnp.linalg.norm(t[:, :2], axis=1, keepdims=True)
  c, s, tx, ty = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
  one, zero = jnp.ones_like(c), jnp.zeros_like(c)
  rot = jnp.stack([jnp.stack([c, -s, zero], -1), jnp.stack([s, c, zero], -1),
                   jnp.stack([zero, zero, one], -1)], 1)
  shift = jnp.stack([jnp.stack([one, zero, -tx], -1), jnp.stack([zero, one, -ty], -1),
                     jnp.stack([zero, zero, one], -1)], 1)
  m = rot @ shift @ transform[None]                                          # [B, 3, 3]
  phases = phases[None] + jnp.einsum("ki,bi->bk", freqs, m[:, :2, 2])     # [B, C]
  freqs = jnp.einsum("ki,bij->bkj", freqs, m[:, :2, :2])                   # [B, C, 2]
  amplitude = jnp.clip(1 - (jnp.linalg.norm(freqs, axis=2) - bandwidth)
                       / (sampling_rate / 2 - bandwidth), 0, 1)             # [B, C]
  width, height = size
  gx = (jnp.arange(width) - (width - 1) / 2) / sampling_rate
  gy = (jnp.arange(height) - (height - 1) / 2) / sampling_rate
  arg = (gx[None, None, :, None] * freqs[:, None, None, :, 0]
         + gy[None, :, None, None] * freqs[:, None, None, :, 1]
         + phases[:, None, None, :])
  feats = jnp.sin(2 * np.pi * arg) * amplitude[:, None, None, :]
  c_in = channel_weight.shape[1]
  return feats @ (channel_weight / np.sqrt(c_in)).T
