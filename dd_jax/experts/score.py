"""Difficulty of real training samples (PAD's FIEX): EL2N scores and per-class rankings.

(`score.method` also offers the other scores of PAD's Table 4a: "loss" (per-sample CE;
the paper's uses a pre-trained ResNet, ours the same early-trained models as EL2N) and
"uncertainty" (least confidence 1 - max_y p(y|x), Coleman et al. 2020, the paper's [4],
which gives no formula; "entropy", -sum p log p, is that paper's other uncertainty); and
"grand" (per-sample gradient norm, Paul et al. 2021). EL2N is the paper's default.)

EL2N(x, y) = || softmax(f(w, x)) - onehot(y) ||_2, averaged over `score.num_models`
models each trained `score.epochs` epochs from its own init (early training, as the
paper). Higher = harder. The ranking of each class (easiest first) feeds the expert
trainer's data scheduler (experts/schedule.py).

Stored as <workdir>/scores/<method>.npz: `scores` [N], `ranking` (class 0's indices
easiest first, then class 1's, ...), `class_sizes`, and `meta` (JSON: data identity incl.
the dataset fingerprint, split, method, models, epochs); `load_ranking` refuses scores
made for other data.
"""
from __future__ import annotations

import io
import json
import os

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dd_jax import models, training
from dd_jax.data import augment, pipeline
from dd_jax.errors import ConfigError, require, require_at_least
from dd_jax.metadata import read_npz, spec_difference, write_bytes_atomic

METHODS = ("el2n", "loss", "uncertainty", "entropy", "grand")   # higher = harder for each


def el2n(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-sample L2 norm of the error vector softmax(logits) - onehot(labels)."""
  onehot = jax.nn.one_hot(labels, logits.shape[-1])
  return jnp.linalg.norm(jax.nn.softmax(logits) - onehot, axis=-1)


def per_sample_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """The "loss" score: per-sample cross-entropy."""
  return training.cross_entropy(logits, labels)


def least_confidence(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """The "uncertainty" score: 1 - the largest class probability (the label unused)."""
  del labels
  return 1.0 - jnp.max(jax.nn.softmax(logits), axis=-1)


def entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """The "entropy" score: the predictive distribution's entropy (the label unused)."""
  del labels
  logp = jax.nn.log_softmax(logits)
  return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


OUTPUT_SCORES = {"el2n": el2n, "loss": per_sample_loss, "uncertainty": least_confidence,
                 "entropy": entropy}   # scores of the outputs alone (grand: the gradient)


def make_scorer(model, method: str = "el2n", chunk: int = 500):
  """Returns scores(params, batch_stats, images, labels) -> [n], in chunks.

  el2n: ||softmax - onehot||; loss: CE; uncertainty: 1 - max softmax; entropy; grand: ||d CE / d params||_2 per sample (GraNd,
  Paul et al. 2021; one per-sample gradient each, so chunks of 50)."""
  if method == "grand":
    chunk = min(chunk, 50)

  def one_grand(params, batch_stats, x, y):
    def ce(p):
      logits, _ = training.apply(model, p, batch_stats, x[None], train=False)
      return per_sample_loss(logits, y[None])[0]
    return optax.tree.norm(jax.grad(ce)(params))

  def scores(params, batch_stats, images, labels):
    n = images.shape[0]
    c = min(chunk, n)
    pad = -n % c
    x = jnp.concatenate([images, jnp.zeros((pad,) + images.shape[1:], images.dtype)])
    y = jnp.concatenate([labels, jnp.zeros((pad,), labels.dtype)])

    def one(xy):
      if method == "grand":
        return jax.vmap(one_grand, in_axes=(None, None, 0, 0))(params, batch_stats, *xy)
      logits, _ = training.apply(model, params, batch_stats, xy[0], train=False)
      return OUTPUT_SCORES[method](logits, xy[1])

    out = jax.lax.map(one, (x.reshape((-1, c) + images.shape[1:]), y.reshape(-1, c)))
    return out.reshape(-1)[:n]

  return scores


def validate(config: ml_collections.ConfigDict) -> None:
  s = config.score
  require(s.method in METHODS, "score.method", f"unknown {s.method!r}",
          f"use one of {', '.join(METHODS)}")
  require_at_least(s, "score", {"num_models": 1, "epochs": 1, "batch_size": 1})
  require(s.lr > 0, "score.lr", f"is {s.lr}", "use a positive learning rate")
  augment.check_strategy(s.dsa_strategy, "score.dsa_strategy")


def expert_seed(config: ml_collections.ConfigDict) -> int:
  """The seed of the experts and of their difficulty ranking: expert.seed, or the run's
  seed when it is -1 (so runs of several distillation seeds can share one set)."""
  return config.expert.seed if config.expert.seed >= 0 else config.seed


def score_meta(config, prepared: pipeline.Prepared) -> dict:
  s = config.score
  return {"data": prepared.describe(), "split": "train", "method": s.method,
          "num_models": s.num_models, "epochs": s.epochs, "arch": config.model.arch,
          "seed": expert_seed(config)}


def score_path(workdir: str, method: str) -> str:
  return os.path.join(workdir, "scores", f"{method}.npz")


def compute_scores(config: ml_collections.ConfigDict, workdir: str,
                   prepared: pipeline.Prepared | None = None) -> str:
  """Trains the scoring models, writes the scores and rankings; returns the path."""
  validate(config)
  prepared = prepared or pipeline.prepare(config.data)
  s = config.score
  model = models.from_config(config.model, prepared.num_classes)
  tx = training.direction("sgd", s.momentum, s.weight_decay)
  epoch_fn = jax.jit(training.make_train_epoch(model, tx, s.batch_size, s.dsa_strategy))
  scorer = jax.jit(make_scorer(model, s.method))
  x, y = jnp.asarray(prepared.x_train), jnp.asarray(prepared.y_train)
  total = np.zeros(len(y), np.float64)
  root = jax.random.fold_in(jax.random.PRNGKey(expert_seed(config)), 7_919)  # not the experts' keys
  for m in range(s.num_models):
    init_key, train_key = jax.random.split(jax.random.fold_in(root, m))
    state = training.init_state(model, init_key, x[:1], tx)
    for e in range(1, s.epochs + 1):
      state, loss, acc = epoch_fn(state, jnp.float32(s.lr), x, y,
                                  jax.random.fold_in(train_key, e))
      logging.info("score model %d/%d epoch %d/%d: loss %.4f train acc %.4f", m + 1,
                   s.num_models, e, s.epochs, float(loss), float(acc))
    total += np.asarray(scorer(state.params, state.batch_stats, x, y), np.float64)
  scores = (total / s.num_models).astype(np.float32)
  ranking, sizes = [], []
  for c in range(prepared.num_classes):
    idx = np.flatnonzero(prepared.y_train == c)
    ranking.append(idx[np.argsort(scores[idx], kind="stable")])   # easiest first
    sizes.append(len(idx))
  path = score_path(workdir, s.method)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  buf = io.BytesIO()
  np.savez(buf, scores=scores, ranking=np.concatenate(ranking).astype(np.int64),
           class_sizes=np.asarray(sizes, np.int64),
           meta=np.array(json.dumps(score_meta(config, prepared), sort_keys=True)))
  write_bytes_atomic(path, buf.getvalue())
  return path


def load_ranking(path: str, prepared: pipeline.Prepared, field: str) -> list[np.ndarray]:
  """Each class's training indices, easiest first, from a stored score file made for
  this data (train split); a ConfigError naming `field` otherwise."""
  require(os.path.exists(path), field, f"{path} does not exist",
          "compute scores first: python -m dd_jax.experts.score")
  f = read_npz(path, field, f"delete {path} and compute the scores again "
               "(python -m dd_jax.experts.score)")
  require("ranking" in f and "class_sizes" in f and "meta" in f, field,
          f"{path} is not a score file", "give a file python -m dd_jax.experts.score wrote")
  ranking, sizes = f["ranking"], f["class_sizes"]
  meta = json.loads(str(f["meta"]))
  if meta.get("split") != "train":
    raise ConfigError(field, f"{path} scores the {meta.get('split')!r} split",
                      "score the training split")
  diff = spec_difference(meta["data"], prepared.describe())
  if diff:
    raise ConfigError(field, f"{path} was computed for other data: {diff}",
                      "compute scores with this config's data")
  return np.split(ranking, np.cumsum(sizes)[:-1])


if __name__ == "__main__":
  # python -m dd_jax.experts.score --config=configs/<file>.py[:variant] --workdir=DIR
  from dd_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run_with_config(lambda config, workdir: f"scores in {compute_scores(config, workdir)}")
