"""AST's representative initialisation: per class, K-Means on a trained expert's
features and the real images nearest the centroids.

K = min(ipc, distill.kmeans_clusters). With ipc <= kmeans_clusters (the paper's IPC 1
and 10) each centroid gives its nearest image; beyond (the paper's IPC 50: 10 clusters)
each centroid gives ipc / K images nearest to it (the first ipc mod K centroids one
more), never the same image twice. Features: the classifier's input ("penultimate",
paper) or the logits ("logits", the official code). K-Means is seeded Lloyd with a
k-means++ start (scikit-learn's defaults), so the init is deterministic.
"""
from __future__ import annotations

import time
from typing import Any

from absl import logging
import numpy as np

from dd_jax.distill import labels as labels_lib
from dd_jax.errors import ConfigError

Params = Any
FEATURES = ("penultimate", "logits")


def _sq_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
  d = (np.sum(x * x, 1)[:, None] - 2.0 * x @ centers.T + np.sum(centers * centers, 1)[None])
  return np.maximum(d, 0.0)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
  centers = [x[rng.integers(len(x))]]
  closest = _sq_distances(x, centers[0][None])[:, 0]
  for _ in range(1, k):
    total = closest.sum()
    i = (rng.choice(len(x), p=closest / total) if total > 0 else rng.integers(len(x)))
    centers.append(x[i])
    closest = np.minimum(closest, _sq_distances(x, x[i][None])[:, 0])
  return np.stack(centers)


def kmeans(x: np.ndarray, k: int, seed: int, restarts: int = 1, max_iters: int = 300,
           tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
  """Lloyd's K-Means from k-means++ starts (as scikit-learn's defaults): ([k, F]
  centroids, [n] assignments) of the lowest-inertia restart. A restart stops when no
  assignment changes or the centroids move less than `tol` times the data's mean
  variance; an emptied cluster restarts at the point farthest from its centroid."""
  x = np.asarray(x, np.float32)
  threshold = tol * float(np.mean(np.var(x, axis=0)))
  if not 1 <= k <= len(x):
    raise ValueError(f"kmeans: k must be in 1..{len(x)} (the number of points), got {k}")
  rng = np.random.default_rng(seed)
  best = None
  for _ in range(restarts):
    centers, assign = _plus_plus(x, k, rng), None
    for _ in range(max_iters):
      dist = _sq_distances(x, centers)
      new_assign = dist.argmin(1)
      if assign is not None and np.array_equal(new_assign, assign):
        break
      assign = new_assign
      onehot = (assign[:, None] == np.arange(k)[None]).astype(np.float32)
      counts = onehot.sum(0)
      moved = onehot.T @ x / np.maximum(counts, 1.0)[:, None]
      for j in np.flatnonzero(counts == 0):
        moved[j] = x[dist[np.arange(len(x)), assign].argmax()]
      shift, centers = float(np.sum((moved - centers) ** 2)), moved
      if shift <= threshold:
        break
    dist = _sq_distances(x, centers)
    assign = dist.argmin(1)
    inertia = dist[np.arange(len(x)), assign].sum()
    if best is None or inertia < best[0]:
      best = (inertia, centers, assign)
  return best[1], best[2]


def nearest_to_centroids(x: np.ndarray, centers: np.ndarray, total: int) -> np.ndarray:
  """`total` distinct row indices of x: centroid j takes its nearest rows not taken yet,
  total // k of them (the first total % k centroids one more), centroid by centroid."""
  k = len(centers)
  dist = _sq_distances(np.asarray(x, np.float32), centers)
  taken: list[int] = []
  for j in range(k):
    want = total // k + (j < total % k)
    for i in np.argsort(dist[:, j], kind="stable"):
      if want == 0:
        break
      if i not in taken:
        taken.append(int(i))
        want -= 1
  return np.asarray(taken, np.int64)


def representative_indices(features: np.ndarray, y_train: np.ndarray, num_classes: int,
                           ipc: int, clusters: int, seed: int) -> np.ndarray:
  """Per class (class-grouped like the synthetic labels), `ipc` training indices nearest
  the centroids of K-Means with K = min(ipc, clusters) on that class's features."""
  k = min(ipc, clusters)
  chosen = []
  for c in range(num_classes):
    members = np.flatnonzero(y_train == c)
    if len(members) < ipc:
      raise ConfigError("distill.ipc", f"K-Means initialisation asks for {ipc} images "
                        f"({k} clusters) of class {c}, which has {len(members)} training "
                        "images", "lower distill.ipc, or use pix_init='noise'")
    centers, _ = kmeans(features[members], k, seed=seed * 1_000 + c)
    chosen.append(members[nearest_to_centroids(features[members], centers, ipc)])
  return np.concatenate(chosen)


def initial_images(model, params: Params, x_train: np.ndarray, y_train: np.ndarray,
                   num_classes: int, ipc: int, clusters: int, kind: str, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """(images, class-grouped int labels) of the representative initialisation, from the
  expert snapshot `params`."""
  started = time.perf_counter()
  features = labels_lib.expert_logits(model, [params], x_train,
                                      features=kind == "penultimate")[0]
  logging.info("K-Means init: %s features of %d training images (%.0fs)", kind,
               len(x_train), time.perf_counter() - started)
  idx = representative_indices(features, y_train, num_classes, ipc, clusters, seed)
  logging.info("K-Means init: %d images per class nearest %d centroids (%.0fs)", ipc,
               min(ipc, clusters), time.perf_counter() - started)
  labels = np.repeat(np.arange(num_classes, dtype=np.int32), ipc)
  return x_train[idx].astype(np.float32), labels
