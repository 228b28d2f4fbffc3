"""DATM's start: real images the experts classify correctly, and learnable soft labels.

Label experts are the stored trajectories at epoch `distill.label_epoch` (-1 = the last),
the first `distill.label_experts` of them (0 = all). As the official code:
  - `pix_init="correct"`: per class, real samples (in a seeded random order) that the first
    label expert classifies correctly;
  - soft labels: each synthetic image's logits averaged over the label experts that
    classify it correctly. An image none of them gets right (possible only with another
    init) takes the average over all of them and is counted in the log; the official code
    divides by zero there.
Soft labels are logits: the inner loop and the evaluation use the soft cross-entropy
-sum(log_softmax(x) * softmax(y)) (training.cross_entropy).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from dd_jax import training
from dd_jax.errors import ConfigError, require

Params = Any


def needs_label_experts(d) -> bool:
  """Whether the init reads expert snapshots: soft labels, pix_init 'correct' (DATM) or
  'kmeans' (AST's representative images, from the first label expert's features)."""
  return d.soft_labels or d.pix_init in ("correct", "kmeans")


def label_epoch(d, stored_epochs: int) -> int:
  """The snapshot epoch the label experts use; a ConfigError outside the trajectory."""
  epoch = stored_epochs if d.label_epoch == -1 else d.label_epoch
  require(d.label_epoch >= -1 and 0 <= epoch <= stored_epochs, "distill.label_epoch",
          f"is {d.label_epoch}, the experts have epochs 0..{stored_epochs}",
          "use -1 (the last epoch) or an epoch the trajectories have")
  return epoch


@functools.lru_cache(maxsize=8)
def _logits_fn(model, features: bool = False) -> Callable:
  if features:   # the flattened input of the classifier (ConvNet)
    return jax.jit(lambda params, x: model.apply({"params": params}, x, train=False,
                                                 features=True))
  return jax.jit(lambda params, x: training.apply(model, params, {}, x, train=False)[0])


def expert_logits(model, snapshots: list[Params], images: np.ndarray,
                  chunk: int = 256, features: bool = False) -> np.ndarray:
  """[E, n, C] logits of each snapshot on `images`, in fixed-size chunks (one compile);
  with `features`, the penultimate features [E, n, F] instead."""
  logits = _logits_fn(model, features)
  n = len(images)
  c = min(chunk, n)
  x = np.concatenate([images, np.zeros((-n % c,) + images.shape[1:], images.dtype)])
  out = []
  for params in snapshots:
    parts = [np.asarray(logits(params, jnp.asarray(x[i:i + c]))) for i in range(0, len(x), c)]
    out.append(np.concatenate(parts)[:n])
  return np.stack(out)


def select_correct(model, params: Params, x_train: np.ndarray, y_train: np.ndarray,
                   num_classes: int, ipc: int, seed: int, chunk: int = 256) -> np.ndarray:
  """Per class, `ipc` training indices (seeded random order) that `params` classifies
  correctly; class-grouped like the synthetic labels."""
  rng = np.random.default_rng(seed)
  logits = _logits_fn(model)
  chosen = []
  for c in range(num_classes):
    order = rng.permutation(np.flatnonzero(y_train == c))
    picked: list[int] = []
    for i in range(0, len(order), chunk):
      idx = order[i:i + chunk]
      x = x_train[idx]
      if len(idx) < chunk:   # keep one compiled shape
        x = np.concatenate([x, np.zeros((chunk - len(idx),) + x.shape[1:], x.dtype)])
      pred = np.asarray(logits(params, jnp.asarray(x))).argmax(-1)[:len(idx)]
      picked.extend(idx[pred == c][:ipc - len(picked)].tolist())
      if len(picked) == ipc:
        break
    if len(picked) < ipc:
      raise ConfigError(
          "distill.label_epoch", f"the first label expert classifies only {len(picked)} "
          f"of class {c}'s {len(order)} training images correctly; distill.ipc={ipc} "
          "needs that many", "use a later (better trained) distill.label_epoch, more "
          "expert epochs, or distill.pix_init='real'")
    chosen.append(np.asarray(picked, np.int64))
  return np.concatenate(chosen)


def soft_labels(logits: np.ndarray, hard: np.ndarray) -> tuple[np.ndarray, int]:
  """Average logits over the experts that classify each image correctly.

  Args:
    logits: [E, n, C] label experts' logits on the synthetic images.
    hard: [n] the images' classes.
  Returns:
    ([n, C] float32 soft labels as logits, number of images no expert got right; those
    take the plain average over all experts).
  """
  correct = logits.argmax(-1) == hard[None]                     # [E, n]
  count = correct.sum(0)                                        # [n]
  summed = (logits * correct[..., None]).sum(0)                 # [n, C]
  labels = np.where(count[:, None] > 0, summed / np.maximum(count, 1)[:, None],
                    logits.mean(0))
  return labels.astype(np.float32), int((count == 0).sum())


def initial_set(d, model, snapshots: list[Params], x_train: np.ndarray,
                y_train: np.ndarray, num_classes: int, seed: int,
                base: Callable[[], tuple[np.ndarray, np.ndarray]]):
  """Images and labels before step 0 for DATM's options; `base()` gives the plain
  (real/noise) init when `pix_init` is not "correct"."""
  if d.pix_init == "correct":
    idx = select_correct(model, snapshots[0], x_train, y_train, num_classes, d.ipc, seed)
    images = x_train[idx].astype(np.float32)
    hard = np.repeat(np.arange(num_classes, dtype=np.int32), d.ipc)
  else:
    images, hard = base()
  if not d.soft_labels:
    return images, hard
  labels, unmatched = soft_labels(expert_logits(model, snapshots, images), hard)
  if unmatched == len(hard):
    raise ConfigError("distill.soft_labels", f"none of the {len(snapshots)} label experts "
                      "classifies any initial synthetic image correctly",
                      "use distill.pix_init='correct', a later distill.label_epoch, or "
                      "better trained experts")
  if unmatched:
    logging.warning("soft labels: %d of %d initial images are misclassified by every "
                    "label expert; they take the average of all experts' logits",
                    unmatched, len(hard))
  return images, labels
