"""IDC's multi-formation parameterisation (Kim et al. 2022): each stored synthetic image
holds factor x factor smaller images side by side; decoding cuts them out and upsamples
each back to full size, so n stored images train as factor^2 n.

As the official `decode_zoom`: tiles are cut row-major (top-left, top-right, ...), every
image's tile (0, 0) first, then every image's tile (0, 1), ...; each tile is resized
bilinearly with half-pixel centres (torch's `align_corners=False`); a decoded image keeps
its stored image's label. The official code pads an image the factor does not divide;
here that is refused (the decoded images would not line up with the stored pixels).
Pure and differentiable: the distillation's gradients reach the stored images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dd_jax.errors import require

Array = jax.Array


def check_factor(factor: int, image_shape, field: str = "idc.factor") -> None:
  """Refuses a factor below 1 or one that does not divide the image's height and width."""
  h, w = image_shape[:2]
  require(factor >= 1, field, f"is {factor}", "use 1 (no multi-formation) or more")
  require(h % factor == 0 and w % factor == 0, field,
          f"{factor} does not divide the {h}x{w} images",
          f"use a factor that divides {h} and {w} (e.g. 2)")


def decode(images: Array, factor: int) -> Array:
  """[n, H, W, C] stored images -> [factor^2 n, H, W, C] training images."""
  if factor == 1:
    return images
  n, h, w, c = images.shape
  check_factor(factor, (h, w))
  th, tw = h // factor, w // factor
  tiles = images.reshape(n, factor, th, factor, tw, c).transpose(1, 3, 0, 2, 4, 5)
  tiles = tiles.reshape(factor * factor * n, th, tw, c)
  return jax.image.resize(tiles, (factor * factor * n, h, w, c), method="bilinear",
                          antialias=False)


def decode_labels(labels: Array, factor: int) -> Array:
  """The labels of `decode(images, factor)`: the stored labels, factor^2 times over."""
  return jnp.concatenate([labels] * (factor * factor), axis=0)


def decode_set(images, labels, factor: int) -> tuple[np.ndarray, np.ndarray]:
  """A stored set as nets train on it (host arrays): `decode` and `decode_labels`."""
  return (np.asarray(decode(jnp.asarray(images), factor)),
          np.asarray(decode_labels(jnp.asarray(labels), factor)))
