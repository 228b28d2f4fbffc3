"""Differentiable Siamese Augmentation (DSA) as pure, jittable functions.

`dsa(key, x)` picks ONE transformation family for the whole call (as the official
DiffAugment does) and draws its parameters per sample from `key`; every op is
differentiable with respect to the images. Images are NHWC. Defaults follow the
official ParamDiffAug: flip p 0.5, scale 1.2, rotate 15 deg, crop 1/8, cutout 1/2,
brightness 1.0, saturation 2.0, contrast 0.5.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from dd_jax.errors import ConfigError

Array = jax.Array
PRNGKey = jax.Array

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"


def brightness(key: PRNGKey, x: Array, ratio: float = 1.0) -> Array:
  r = jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype)
  return x + (r - 0.5) * ratio


def saturation(key: PRNGKey, x: Array, ratio: float = 2.0) -> Array:
  mean = x.mean(axis=3, keepdims=True)
  r = jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype)
  return (x - mean) * (r * ratio) + mean


def contrast(key: PRNGKey, x: Array, ratio: float = 0.5) -> Array:
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  r = jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype)
  return (x - mean) * (r + ratio) + mean


def color(key: PRNGKey, x: Array) -> Array:
  kb, ks, kc = jax.random.split(key, 3)
  return contrast(kc, saturation(ks, brightness(kb, x)))


def crop(key: PRNGKey, x: Array, ratio: float = 0.125) -> Array:
  """Translation by up to ratio*size pixels per axis, zero fill (the official 'crop')."""
  n, h, w, _ = x.shape
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  kx, ky = jax.random.split(key)
  tx = jax.random.randint(kx, (n,), -sh, sh + 1)
  ty = jax.random.randint(ky, (n,), -sw, sw + 1)
  padded = jnp.pad(x, ((0, 0), (sh, sh), (sw, sw), (0, 0)))

  def shift(img, dx, dy):  # output[i, j] = x[i + dx, j + dy], zero outside
    return jax.lax.dynamic_slice(img, (sh + dx, sw + dy, 0), (h, w, img.shape[-1]))

  return jax.vmap(shift)(padded, tx, ty)


def cutout(key: PRNGKey, x: Array, ratio: float = 0.5) -> Array:
  n, h, w, _ = x.shape
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  kx, ky = jax.random.split(key)
  ox = jax.random.randint(kx, (n, 1, 1), 0, h + (1 - ch % 2)) - ch // 2
  oy = jax.random.randint(ky, (n, 1, 1), 0, w + (1 - cw % 2)) - cw // 2
  rows = jnp.arange(h)[None, :, None]
  cols = jnp.arange(w)[None, None, :]
  inside = (rows >= ox) & (rows < ox + ch) & (cols >= oy) & (cols < oy + cw)
  return x * (~inside)[..., None].astype(x.dtype)


def flip(key: PRNGKey, x: Array, prob: float = 0.5) -> Array:
  do = jax.random.uniform(key, (x.shape[0], 1, 1, 1)) < prob
  return jnp.where(do, x[:, :, ::-1, :], x)


def _affine_sample(x: Array, theta: Array) -> Array:
  """grid_sample(x, affine_grid(theta)) with bilinear weights, zeros outside and
  align_corners=True, as torch does. theta: [N, 2, 3] acting on (x=col, y=row)."""
  n, h, w, c = x.shape
  gy, gx = jnp.meshgrid(jnp.linspace(-1.0, 1.0, h), jnp.linspace(-1.0, 1.0, w),
                        indexing="ij")
  base = jnp.stack([gx, gy, jnp.ones_like(gx)], axis=-1)       # [h, w, 3]
  src = jnp.einsum("hwk,nik->nhwi", base, theta)               # [n, h, w, 2]
  col = (src[..., 0] + 1.0) * 0.5 * (w - 1)
  row = (src[..., 1] + 1.0) * 0.5 * (h - 1)
  c0, r0 = jnp.floor(col), jnp.floor(row)

  def sample_one(img, r0, c0, row, col):
    flat = img.reshape(h * w, c)
    out = jnp.zeros((h, w, c), img.dtype)
    for dr in (0, 1):
      for dc in (0, 1):
        rr, cc = r0 + dr, c0 + dc
        weight = (1.0 - jnp.abs(row - rr)) * (1.0 - jnp.abs(col - cc))
        valid = (rr >= 0) & (rr <= h - 1) & (cc >= 0) & (cc <= w - 1)
        idx = (jnp.clip(rr, 0, h - 1) * w + jnp.clip(cc, 0, w - 1)).astype(jnp.int32)
        out = out + flat[idx] * jnp.where(valid, weight, 0.0)[..., None]
    return out

  return jax.vmap(sample_one)(x, r0, c0, row, col)


def scale(key: PRNGKey, x: Array, ratio: float = 1.2) -> Array:
  kx, ky = jax.random.split(key)
  n = x.shape[0]
  sx = jax.random.uniform(kx, (n,)) * (ratio - 1.0 / ratio) + 1.0 / ratio
  sy = jax.random.uniform(ky, (n,)) * (ratio - 1.0 / ratio) + 1.0 / ratio
  zero = jnp.zeros_like(sx)
  theta = jnp.stack([jnp.stack([sx, zero, zero], -1), jnp.stack([zero, sy, zero], -1)], 1)
  return _affine_sample(x, theta)


def rotate(key: PRNGKey, x: Array, degrees: float = 15.0) -> Array:
  n = x.shape[0]
  t = (jax.random.uniform(key, (n,)) - 0.5) * 2 * degrees / 180 * math.pi
  zero = jnp.zeros_like(t)
  theta = jnp.stack([jnp.stack([jnp.cos(t), jnp.sin(t), zero], -1),
                     jnp.stack([-jnp.sin(t), jnp.cos(t), zero], -1)], 1)
  return _affine_sample(x, theta)


AUGMENTATIONS: dict[str, Callable[[PRNGKey, Array], Array]] = {
    "color": color, "crop": crop, "cutout": cutout, "flip": flip,
    "scale": scale, "rotate": rotate,
}


def parse_strategy(strategy: str) -> tuple[str, ...]:
  names = tuple(s for s in strategy.split("_") if s)
  unknown = [s for s in names if s not in AUGMENTATIONS]
  if unknown or not names:
    raise ValueError(f"unknown DSA op(s) {unknown} in {strategy!r}; "
                     f"choose from {sorted(AUGMENTATIONS)}")
  return names


def enabled(strategy: str | Sequence[str] | None) -> bool:
  """False for the spellings of "no augmentation": "", "none", None."""
  return strategy not in ("", "none", None)


def check_strategy(strategy: str, field: str) -> None:
  """Config validation: a ConfigError naming `field` for unknown ops."""
  if enabled(strategy):
    try:
      parse_strategy(strategy)
    except ValueError as err:
      raise ConfigError(field, str(err), "use ops joined by '_', or 'none'") from err


def dsa(key: PRNGKey, x: Array, strategy: str | Sequence[str] = DEFAULT_STRATEGY) -> Array:
  """Applies one randomly chosen op of `strategy` to the batch x [N, H, W, C].

  Args:
    key: PRNG key; the op and its per-sample parameters are drawn from it.
    x: images, any float dtype.
    strategy: underscore-joined op names (or a sequence); "" or "none" is identity.
  Returns:
    Augmented images, same shape; differentiable with respect to x.
  """
  if not enabled(strategy):
    return x
  names = parse_strategy(strategy) if isinstance(strategy, str) else tuple(strategy)
  if len(names) == 1:
    return AUGMENTATIONS[names[0]](key, x)
  kchoice, kop = jax.random.split(key)
  choice = jax.random.randint(kchoice, (), 0, len(names))
  branches = [lambda k, v, f=AUGMENTATIONS[n]: f(k, v) for n in names]
  return jax.lax.switch(choice, branches, kop, x)


# IDC's evaluation DiffAug (single=False): these ops apply to every batch, in this order
# around the one op drawn from the rest of the strategy (crop, scale, rotate).
ALWAYS_FIRST = ("flip", "color")
ALWAYS_LAST = ("cutout",)


def dsa_idc(key: PRNGKey, x: Array, strategy: str | Sequence[str] = DEFAULT_STRATEGY
            ) -> Array:
  """IDC's augmentation of an evaluation batch (its DiffAug with single=False, per-sample
  draws): flip and color (those in `strategy`) on every batch, then ONE op drawn from
  the strategy's others, then cutout if listed. Differentiable like `dsa`."""
  if not enabled(strategy):
    return x
  names = parse_strategy(strategy) if isinstance(strategy, str) else tuple(strategy)
  first = [n for n in ALWAYS_FIRST if n in names]
  last = [n for n in ALWAYS_LAST if n in names]
  rest = tuple(n for n in names if n not in ALWAYS_FIRST + ALWAYS_LAST)
  keys = jax.random.split(key, len(first) + len(last) + 1)
  for k, name in zip(keys, first):
    x = AUGMENTATIONS[name](k, x)
  if rest:
    x = dsa(keys[len(first)], x, rest)
  for k, name in zip(keys[len(first) + 1:], last):
    x = AUGMENTATIONS[name](k, x)
  return x


def augment_batch(mode: str, key: PRNGKey, x: Array, strategy: str | Sequence[str]) -> Array:
  """A training batch's augmentation: mode "one" (`dsa`, the MTT/DC family's) or "idc"
  (`dsa_idc`)."""
  return BATCH_MODES.get(mode, dsa)(key, x, strategy)


# eval.protocol recipes' augmentation modes (anything else: "one")
BATCH_MODES = {"one": dsa, "idc": dsa_idc}


def cutmix(key: PRNGKey, x: Array, prob: float, beta: float = 1.0
           ) -> tuple[Array, Array, Array]:
  """CutMix of a batch (applied with probability `prob`): a box of area ~ (1 - lam),
  lam ~ Beta(beta, beta), pasted from a permutation of the batch. Returns the images,
  the permutation and the weight of the original labels (1 when not applied)."""
  n, h, w, _ = x.shape
  kdo, klam, kperm, ky, kx = jax.random.split(key, 5)
  lam = jax.random.beta(klam, beta, beta)
  cut = jnp.sqrt(1.0 - lam)
  ch, cw = (cut * h).astype(jnp.int32), (cut * w).astype(jnp.int32)
  cy, cx = jax.random.randint(ky, (), 0, h), jax.random.randint(kx, (), 0, w)
  y0, y1 = jnp.clip(cy - ch // 2, 0, h), jnp.clip(cy + ch // 2, 0, h)
  x0, x1 = jnp.clip(cx - cw // 2, 0, w), jnp.clip(cx + cw // 2, 0, w)
  rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  box = ((rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1))[None, :, :, None]
  perm = jax.random.permutation(kperm, n)
  apply = jax.random.uniform(kdo) < prob
  box = box & apply
  mixed = jnp.where(box, x[perm], x)
  kept = 1.0 - jnp.sum(box) / (h * w)
  return mixed, perm, kept
