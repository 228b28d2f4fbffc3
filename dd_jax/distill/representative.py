"""AST's representative initialisation: per class, K-Means on a trained expert's
features and the real images nearest the centroids.

K = min(ipc, distill.kmeans_clusters). With ipc <= kmeans_clusters (the paper's IPC 1
and 10) each centroid gives its nearest image; beyond (the paper's IPC 50: 10 clusters)
each centroid gives ipc / K images nearest to it (the first ipc mod K centroids one
more), never the same image twice. Features: the classifier's input ("penultimate",
paper) or the logits ("logits", the official code). K-Means is seeded Lloyd with
k-means++ starts (the best of a few restarts by inertia), so the init is deterministic.
"""
from __future__ import annotations

from typing import Any

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


def kmeans(x: np.ndarray, k: int, seed: int, restarts: int = 4,
           max_iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """Lloyd's K-Means: ([k, F] centroids, [n] assignments) of the lowest-inertia restart.
  An emptied cluster restarts at the point farthest from its centroid."""
  x = np.asarray(x, np.float64)
  if not 1 <= k <= len(x):
    raise ValueError(f"kmeans: k must be in 1..{len(x)} (the number of points), got {k}")
  rng = np.random.default_rng(seed)
  best = None
  for _ in range(restarts):
    centers = _plus_plus(x, k, rng)
    for _ in range(max_iters):
      dist = _sq_distances(x, centers)
      assign = dist.argmin(1)
      new = centers.copy()
      for j in range(k):
        members = x[assign == j]
        if len(members):
          new[j] = members.mean(0)
        else:
          new[j] = x[dist[np.arange(len(x)), assign].argmax()]
      if np.allclose(new, centers):
        break
      centers = new
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
  dist = _sq_distances(np.asarray(x, np.float64), centers)
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
  features = labels_lib.expert_logits(model, [params], x_train,
                                      features=kind == "penultimate")[0]
  idx = representative_indices(features, y_train, num_classes, ipc, clusters, seed)
  labels = np.repeat(np.arange(num_classes, dtype=np.int32), ipc)
  return x_train[idx].astype(np.float32), labels
