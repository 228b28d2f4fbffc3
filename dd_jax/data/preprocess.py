"""Pixel preprocessing as in the official code: [0,1] scaling, per-channel mean/std
normalisation, and ZCA whitening fitted on the train set, each with its inverse.

A `Preprocessor` is fitted once on the train images and applied to every split; its
`describe()` goes into expert metadata so trajectories from a different preprocessing are
refused, and `invert()` turns (synthetic) images back into pixels for viewing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np


@dataclasses.dataclass(frozen=True)
class Preprocessor:
  mean: np.ndarray          # [C] per-channel mean of [0,1] pixels
  std: np.ndarray           # [C]
  zca: np.ndarray | None    # [D, D] whitening matrix, D = H*W*C (None: no ZCA)
  zca_inverse: np.ndarray | None
  zca_mean: np.ndarray | None  # [D] mean of the normalised train images
  zca_epsilon: float = 0.1

  def apply(self, images: np.ndarray, batch: int = 4096) -> np.ndarray:
    """uint8 (or [0,1] float) NHWC -> network input, float32."""
    x = to_unit(images)
    x = (x - self.mean) / self.std
    if self.zca is None:
      return x.astype(np.float32)
    shape = x.shape
    flat = x.reshape(shape[0], -1)
    out = np.empty_like(flat, dtype=np.float32)
    for i in range(0, len(flat), batch):  # bounded memory for large sets
      out[i: i + batch] = (flat[i: i + batch] - self.zca_mean) @ self.zca
    return out.reshape(shape)

  def invert(self, x: np.ndarray) -> np.ndarray:
    """Network input -> [0,1] pixels (clipped), undoing ZCA then normalisation."""
    x = np.asarray(x, np.float64)
    if self.zca is not None:
      shape = x.shape
      x = (x.reshape(shape[0], -1) @ self.zca_inverse + self.zca_mean).reshape(shape)
    return np.clip(x * self.std + self.mean, 0.0, 1.0).astype(np.float32)

  def describe(self) -> dict:
    """JSON-able identity of this preprocessing (ZCA by a fingerprint of its matrix)."""
    desc = {"normalize": True,
            "mean": [round(float(m), 6) for m in self.mean],
            "std": [round(float(s), 6) for s in self.std],
            "zca": self.zca is not None}
    if self.zca is not None:
      desc["zca_epsilon"] = self.zca_epsilon
      desc["zca_fingerprint"] = _fingerprint(self.zca)
    return desc


def _fingerprint(matrix: np.ndarray) -> str:
  # Rounded, so the fingerprint survives last-bit differences between LAPACK builds.
  return hashlib.sha256(np.round(matrix, 4).astype(np.float32).tobytes()).hexdigest()[:16]


def to_unit(images: np.ndarray) -> np.ndarray:
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 255.0
  return images.astype(np.float32)


def fit(train_images: np.ndarray, zca: bool = False, zca_epsilon: float = 0.1) -> Preprocessor:
  """Fits mean/std (and ZCA) on uint8 train images [N, H, W, C]."""
  x = to_unit(train_images)
  axes = (0, 1, 2)
  mean = x.mean(axis=axes, dtype=np.float64)
  std = x.std(axis=axes, dtype=np.float64)
  if not zca:
    return Preprocessor(mean.astype(np.float32), std.astype(np.float32), None, None, None,
                        zca_epsilon)
  flat = ((x - mean) / std).reshape(len(x), -1).astype(np.float64)
  zmean = flat.mean(axis=0)
  centred = flat - zmean
  cov = centred.T @ centred / (len(flat) - 1)  # unbiased, as kornia's ZCA
  eigvals, eigvecs = np.linalg.eigh(cov)
  eigvals = np.maximum(eigvals, 0.0)
  whiten = (eigvecs * (1.0 / np.sqrt(eigvals + zca_epsilon))) @ eigvecs.T
  unwhiten = (eigvecs * np.sqrt(eigvals + zca_epsilon)) @ eigvecs.T
  return Preprocessor(mean.astype(np.float32), std.astype(np.float32),
                      whiten.astype(np.float32), unwhiten.astype(np.float32),
                      zmean.astype(np.float32), zca_epsilon)


def describe_json(pre: Preprocessor) -> str:
  return json.dumps(pre.describe(), sort_keys=True)
