"""The synthetic set in plain formats: npz + JSON any framework can read, PNG grids a
person can look at (preprocessing, ZCA included, inverted)."""
from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from dd_jax import faults
from dd_jax.data.preprocess import Preprocessor
from dd_jax.metadata import write_bytes_atomic, write_json_atomic


def class_grid(pixels: np.ndarray, labels: np.ndarray, num_classes: int,
               max_per_class: int = 10, max_classes: int = 100, pad: int = 1) -> np.ndarray:
  """[n, H, W, C] images in [0,1] -> one [rows*(H+pad)+pad, cols*(W+pad)+pad, C] grid: a
  row per class (at most `max_classes`), at most `max_per_class` images in each row; with
  one image per class, the classes fill a square-ish block in class order."""
  hard = labels if labels.ndim == 1 else labels.argmax(-1)
  rows = [np.flatnonzero(hard == c)[:max_per_class] for c in range(min(num_classes,
                                                                         max_classes))]
  if max(len(r) for r in rows) <= 1:   # one image per class: a square-ish block instead
    flat = np.concatenate(rows).astype(int)
    cols = int(np.ceil(np.sqrt(len(flat))))
    rows = [flat[i: i + cols] for i in range(0, len(flat), cols)]
  cols = max(1, max(len(r) for r in rows))
  n, h, w, c = pixels.shape
  grid = np.ones((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
  for i, idx in enumerate(rows):
    for j, k in enumerate(idx):
      grid[pad + i * (h + pad): pad + i * (h + pad) + h,
           pad + j * (w + pad): pad + j * (w + pad) + w] = pixels[k]
  return grid


def to_png_bytes(grid: np.ndarray, scale: int = 1) -> bytes:
  arr = np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)
  if arr.shape[-1] == 1:
    arr = arr[..., 0]
  img = Image.fromarray(arr)
  if scale > 1:
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
  buf = io.BytesIO()
  img.save(buf, format="PNG")
  return buf.getvalue()


def synset_paths(prefix: str) -> dict[str, str]:
  """The files `save_synset` writes for `prefix`."""
  return {k: f"{prefix}.{k}" for k in ("npz", "json", "png")}


def save_synset(prefix: str, images: np.ndarray, labels: np.ndarray, lr: float,
                pre: Preprocessor, num_classes: int, meta: dict,
                pixels: np.ndarray | None = None) -> dict[str, str]:
  """Writes <prefix>.npz, <prefix>.json and <prefix>.png; returns their paths.

  npz arrays: `images` [n, H, W, C] float32 as the network sees them (after
  normalisation/ZCA), `pixels` the same images in [0,1] (preprocessing inverted,
  clipped), `labels` (int or soft logits), `lr` (learned student lr), `meta` (the JSON
  string also written to <prefix>.json: data identity, preprocessing, config, step).
  `pixels` may be passed when the caller has already inverted the preprocessing.
  """
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels)
  pixels = pre.invert(images) if pixels is None else pixels
  meta = dict(meta, lr=float(lr), num_images=int(len(images)),
              labels="int class ids" if labels.ndim == 1 else "soft logits [n, classes]")
  meta_json = json.dumps(meta, sort_keys=True)
  paths = synset_paths(prefix)
  buf = io.BytesIO()
  np.savez(buf, images=images, pixels=pixels, labels=labels, lr=np.float32(lr),
           meta=np.array(meta_json))
  write_bytes_atomic(paths["npz"], buf.getvalue())
  faults.point("distill.export")
  write_json_atomic(paths["json"], meta)
  scale = max(1, 128 // images.shape[1])
  write_bytes_atomic(paths["png"], to_png_bytes(class_grid(pixels, labels, num_classes),
                                                 scale=min(scale, 4)))
  return paths
