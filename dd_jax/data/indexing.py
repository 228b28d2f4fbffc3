"""Per-class indexing and seeded per-class sampling of real images."""
from __future__ import annotations

import numpy as np

from dd_jax.errors import require


def class_indices(labels: np.ndarray, num_classes: int) -> list[np.ndarray]:
  """Indices of each class's samples, in dataset order."""
  labels = np.asarray(labels)
  return [np.flatnonzero(labels == c) for c in range(num_classes)]


def sample_per_class(labels: np.ndarray, num_classes: int, ipc: int, seed: int,
                     field: str = "ipc") -> np.ndarray:
  """`ipc` distinct random indices per class, grouped by class: [num_classes * ipc]."""
  rng = np.random.default_rng(seed)
  out = []
  for c, idx in enumerate(class_indices(labels, num_classes)):
    require(ipc <= len(idx), field,
            f"{ipc} images per class asked but class {c} has only {len(idx)}",
            f"set {field} to at most {len(idx)}")
    out.append(rng.choice(idx, size=ipc, replace=False))
  return np.concatenate(out)
