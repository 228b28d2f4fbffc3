"""Training expert trajectories on real data and storing them (experts/store.py).

Each expert e: init from fold_in(seed, e); epoch k's shuffling and DSA from
fold_in(train_key, k), so a resumed run draws exactly what an uninterrupted one would.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from typing import Any, Callable, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dd_jax import disk, faults, losses, models, training
from dd_jax import progress as heartbeat
from dd_jax.data import augment, pipeline
from dd_jax.errors import require, require_at_least
from dd_jax.experts import schedule as schedule_lib
from dd_jax.experts import score as score_lib
from dd_jax.experts import store

MODEL_FIELDS = ("arch", "width", "depth", "norm", "pooling", "activation")
LR_SCHEDULES = ("constant", "step", "cosine")
DATA_SCHEDULES = ("none",) + tuple(schedule_lib.SCHEDULES)   # pad: FIEX easy-to-hard;
# prune: a fixed fraction of the hardest or easiest samples removed (experts/schedule.py)
SAMS = ("none", "gsam")            # gsam: DATM/PAD's expert optimiser


# The config sections expert training reads (python -m dd_jax.experts refuses others).
SECTIONS_READ = ("data", "model", "expert", "score", "seed", "distributed", "mesh")


def step_epochs(step_after: tuple[int, ...], epochs: int) -> tuple[int, ...]:
  """The (1-based) epochs after which a "step" schedule multiplies the lr: the given
  ones, or () = half of the epochs."""
  return tuple(step_after) or (epochs // 2,)


def epoch_lr(schedule: str, base: float, epoch: int, epochs: int,
             step_after: tuple[int, ...] = (), step_factor: float = 0.1) -> float:
  """Learning rate for (1-based) `epoch`: constant (MTT), x`step_factor` after each
  epoch of `step_after` (default x0.1 after half), or cosine."""
  if schedule == "constant":
    return base
  if schedule == "step":
    return base * step_factor ** sum(epoch > m for m in step_epochs(step_after, epochs))
  if schedule == "cosine":
    return base * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
  raise ValueError(schedule)


def validate(config: ml_collections.ConfigDict) -> None:
  e = config.expert
  require_at_least(e, "expert", {"num_experts": 1, "epochs": 1, "batch_size": 1,
                                 "seed": -1})
  require(e.lr > 0, "expert.lr", f"is {e.lr}", "use a positive learning rate")
  require(e.lr_schedule in LR_SCHEDULES, "expert.lr_schedule", f"unknown {e.lr_schedule!r}",
          f"use one of {', '.join(LR_SCHEDULES)}")
  if e.lr_schedule == "step":
    bad = [m for m in e.lr_step_after if not 1 <= m < e.epochs]
    require(not bad, "expert.lr_step_after", f"{bad} outside the experts' epochs 1..{e.epochs - 1}",
            "give 1-based epochs after which the lr steps (AST: (25,)), or () for half")
    require(0 < e.lr_step_factor <= 1, "expert.lr_step_factor", f"is {e.lr_step_factor}",
            "use a factor in (0, 1] (0.1 MTT-style, AST's paper 0.5)")
  require(e.optimizer in ("sgd", "adam"), "expert.optimizer", f"unknown {e.optimizer!r}",
          "use 'sgd' or 'adam'")
  augment.check_strategy(e.dsa_strategy, "expert.dsa_strategy")
  require(e.sam in SAMS, "expert.sam", f"unknown {e.sam!r}", f"use one of {', '.join(SAMS)}")
  if e.sam == "gsam":
    require(e.sam_rho > 0, "expert.sam_rho", f"is {e.sam_rho}", "use a positive radius, "
            "e.g. 0.01")
    require(0 <= e.sam_alpha <= 1, "expert.sam_alpha", f"is {e.sam_alpha}",
            "use a value in [0, 1], e.g. 0.3")
  require(e.clip_epochs >= 0, "expert.clip_epochs", f"is {e.clip_epochs}",
          "use 0 (off) or the epochs over which the CE scale ramps to 1 (paper 5)")
  if e.clip_epochs:
    require(0 < e.clip_start <= 1, "expert.clip_start", f"is {e.clip_start}",
            "use a starting CE scale in (0, 1], e.g. 0.5")
  require(e.gp_weight >= 0, "expert.gp_weight", f"is {e.gp_weight}",
          "use 0 (off) or a positive weight (paper 1, code 2)")
  if e.gp_weight:
    require(e.gp_target > 0, "expert.gp_target", f"is {e.gp_target}",
            "use a positive target norm K for the input gradients, e.g. 1 (the paper)")
    require(e.gp_norm in training.PENALTY_NORMS, "expert.gp_norm", f"unknown {e.gp_norm!r}",
            f"use one of {', '.join(training.PENALTY_NORMS)}")
  require(e.data_schedule in DATA_SCHEDULES, "expert.data_schedule",
          f"unknown {e.data_schedule!r}", f"use one of {', '.join(DATA_SCHEDULES)}")
  if e.data_schedule != "none":
    schedule_lib.from_config(e).validate("expert.schedule")
    score_lib.validate(config)


def scores_file(config: ml_collections.ConfigDict, workdir: str) -> str:
  return config.expert.schedule.scores or score_lib.score_path(workdir, config.score.method)


def data_ranking(config: ml_collections.ConfigDict, workdir: str,
                 prepared: pipeline.Prepared) -> tuple[list[np.ndarray], str]:
  """Each class's indices easiest first for the PAD scheduler, and the ranking's digest.
  Scores are computed first (python -m dd_jax.experts.score) when the default file is
  missing; an explicit `expert.schedule.scores` path must exist."""
  path = scores_file(config, workdir)
  if not config.expert.schedule.scores and not os.path.exists(path):
    logging.info("no difficulty scores at %s: computing them first", path)
    score_lib.compute_scores(config, workdir, prepared)
  ranked = score_lib.load_ranking(path, prepared, "expert.schedule.scores")
  digest = hashlib.sha256(np.concatenate(ranked).astype(np.int64).tobytes()).hexdigest()
  return ranked, digest[:16]


def expert_spec(config: ml_collections.ConfigDict, prepared: pipeline.Prepared,
                ranking_digest: str | None = None, warm_start=None) -> dict:
  """What a trajectory depends on; a stored folder must match it to be reused. With the
  PAD scheduler, its settings and the digest of the difficulty ranking are part of it."""
  e = config.expert
  model = {k: config.model.get(k) for k in MODEL_FIELDS}
  if config.model.arch == "MLP":
    model["hidden"] = list(config.model.hidden)
  if prepared.x_train.shape[-1] == 1 and config.model.arch.startswith("ConvNet"):
    # the official 28 -> 32 px stem (experts of dd_jax's old 28 px net are refused)
    model["one_channel_padding"] = config.model.one_channel_padding
  return {"data": prepared.describe(),
          "model": model,
          "optimizer": {"name": e.optimizer, "lr": e.lr, "lr_schedule": e.lr_schedule,
                        **_step_spec(e),
                        "momentum": e.momentum,
                        "weight_decay": e.weight_decay, "batch_size": e.batch_size},
          "dsa_strategy": e.dsa_strategy,
          "epochs": e.epochs,
          "seed": score_lib.expert_seed(config),
          **({"clipped_ce": {"epochs": e.clip_epochs, "start": e.clip_start}}
             if e.clip_epochs else {}),
          **({"gradient_penalty": {"weight": e.gp_weight, "target": e.gp_target,
                                   "norm": e.gp_norm}} if e.gp_weight else {}),
          **({"sam": {"name": "gsam", "rho": e.sam_rho, "alpha": e.sam_alpha,
                      "adaptive": e.sam_adaptive}} if e.sam == "gsam" else {}),
          **({"data_schedule": {**schedule_lib.from_config(e).spec(),
                                "ranking": ranking_digest}}
             if e.data_schedule != "none" else {}),
          **({"warm_start": warm_start.spec()} if warm_start is not None else {})}


def _step_spec(e) -> dict:
  """A step schedule's settings other than the original x0.1 after half with momentum
  kept (so experts stored before these fields existed stay valid)."""
  if e.lr_schedule != "step":
    return {}
  out = {}
  if tuple(e.lr_step_after):
    out["lr_step_after"] = list(e.lr_step_after)
  if e.lr_step_factor != 0.1:
    out["lr_step_factor"] = e.lr_step_factor
  if e.lr_step_reset:
    out["lr_step_reset"] = True
  return out


def stored_spec(config: ml_collections.ConfigDict, workdir: str,
                prepared: pipeline.Prepared, warm_start=None) -> dict:
  """The spec stored experts must have (reading the ranking when the scheduler is on)."""
  digest = (data_ranking(config, workdir, prepared)[1]
            if config.expert.data_schedule != "none" else None)
  return expert_spec(config, prepared, digest, warm_start)


def expert_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  return config.expert.dir or os.path.join(workdir, "experts")


def disk_needs(config: ml_collections.ConfigDict, directory: str, param_bytes: int) -> int:
  """Bytes the missing experts will take: every epoch's parameters and the optimiser
  state saved with them (to resume)."""
  e = config.expert
  slots = 2 if e.optimizer == "adam" else int(bool(e.momentum))
  missing = max(0, e.num_experts - store.count_complete(directory))
  return missing * (e.epochs + 1) * param_bytes * (1 + slots)


def train_experts(config: ml_collections.ConfigDict, workdir: str,
                  prepared: pipeline.Prepared | None = None, warm_start=None) -> str:
  """Trains (or finishes) `expert.num_experts` trajectories; returns their folder.

  `warm_start` (SeqMatch's official experts, `distill.seqmatch.WarmStart`): each
  expert's epoch 0 is its init trained on the earlier synthetic subsets first."""
  validate(config)
  prepared = prepared or pipeline.prepare(config.data)
  model = models.from_config(config.model, prepared.num_classes)
  directory, data = _claim_folder(config, workdir, prepared, model, warm_start)
  programs = _Programs.build(model, config.expert)
  arrays = _Arrays(*(jnp.asarray(a) for a in (prepared.x_train, prepared.y_train,
                                              prepared.x_test, prepared.y_test)))
  root = jax.random.PRNGKey(score_lib.expert_seed(config))
  progress = _Progress(config.expert)
  for index in range(config.expert.num_experts):
    writer = store.TrajectoryWriter(directory, index)
    if writer.complete:
      writer.close()
      continue
    init_key, train_key = jax.random.split(jax.random.fold_in(root, index))
    state, first = _first_epoch(writer, programs, model, init_key, arrays, warm_start)
    for epoch in range(first + 1, config.expert.epochs + 1):
      progress.announce(index, epoch)
      state, metrics = _train_epoch(programs, config.expert, state, data, epoch, train_key,
                                    arrays)
      faults.point("expert.epoch")
      writer.save(epoch, state, metrics)
      faults.point("expert.checkpoint")
      progress.log(index, epoch, metrics)
    writer.finish(avg_var=store.avg_var(writer.meta))
    writer.close()
  heartbeat.doing(None)
  return directory


def _claim_folder(config, workdir: str, prepared: pipeline.Prepared, model, warm_start):
  """(the experts' folder, the epoch's data: (ranked indices, scheduler) or None): the
  folder checked for room and claimed for this spec before any compute."""
  e = config.expert
  schedule, ranked, digest = None, None, None
  if e.data_schedule != "none":
    ranked, digest = data_ranking(config, workdir, prepared)
    schedule = schedule_lib.from_config(e)
  spec = expert_spec(config, prepared, digest, warm_start)
  directory = expert_dir(config, workdir)
  disk.check_writable(directory, "expert.dir" if e.dir else "--workdir")
  abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), prepared.x_train[:1],
                                               train=False)["params"])
  disk.check_space(directory, {"experts": disk_needs(config, directory,
                                                     disk.tree_bytes(abstract))},
                   "expert.num_experts", "free space, point expert.dir at a larger disk, "
                   "or train fewer experts (expert.num_experts) or epochs (expert.epochs)")
  store.prepare_directory(directory, spec)  # refuses a mismatched folder before compute
  return directory, (None if schedule is None else (ranked, schedule))


@dataclasses.dataclass
class _Programs:
  """The compiled programs an expert trains with, and its optimiser."""
  tx: Any
  epoch: Callable
  step_distance: Callable
  accuracy: Callable

  @classmethod
  def build(cls, model, e) -> "_Programs":
    tx = training.direction(e.optimizer, e.momentum, e.weight_decay)
    sam = (training.GSAM(rho=e.sam_rho, alpha=e.sam_alpha, adaptive=e.sam_adaptive)
           if e.sam == "gsam" else None)
    penalty = (training.GradientPenalty(e.gp_weight, e.gp_target, e.gp_norm)
               if e.gp_weight else None)
    epoch = jax.jit(training.make_train_epoch(model, tx, e.batch_size, e.dsa_strategy,
                                              sam=sam, penalty=penalty))
    return cls(tx, epoch, jax.jit(losses.squared_distance),
               jax.jit(training.make_accuracy(model)))


class _Arrays(NamedTuple):
  x_train: jax.Array
  y_train: jax.Array
  x_test: jax.Array
  y_test: jax.Array


def _first_epoch(writer, programs: _Programs, model, init_key, arrays: _Arrays, warm_start):
  """(state, epoch) an expert goes on from: its last saved epoch, or epoch 0 (its init,
  warm-started by SeqMatch's stages when given) saved first."""
  x_train = arrays.x_train
  state = training.init_state(model, init_key, x_train[:1], programs.tx)
  first = writer.latest_epoch
  if first is not None:
    logging.info("expert %d: resuming after epoch %d", writer.index, first)
    return writer.restore(first, state), first
  if warm_start is not None:
    params, stats = warm_start(model, init_key, x_train[:1])
    state = training.NetState(params=params, batch_stats=stats,
                              opt_state=programs.tx.init(params))
  writer.save(0, state, {"test_acc": _test_accuracy(programs, state, arrays)})
  return state, 0


def _test_accuracy(programs: _Programs, state, arrays: _Arrays) -> float:
  return float(programs.accuracy(state.params, state.batch_stats, arrays.x_test,
                                 arrays.y_test))


def _train_epoch(programs: _Programs, e, state, data, epoch: int, train_key, arrays: _Arrays):
  """One epoch of one expert (its lr, a new SGD where AST's code starts one, the
  scheduler's share of the data, AST's clipped CE): (state, the epoch's metrics)."""
  t0 = time.perf_counter()
  lr = jnp.float32(epoch_lr(e.lr_schedule, e.lr, epoch, e.epochs,
                            tuple(e.lr_step_after), e.lr_step_factor))
  if (e.lr_schedule == "step" and e.lr_step_reset
      and epoch - 1 in step_epochs(tuple(e.lr_step_after), e.epochs)):
    state = state.replace(opt_state=programs.tx.init(state.params))   # a new SGD, as AST's code
  x, y = arrays.x_train, arrays.y_train
  if data is not None:   # the official loop counts epochs from 0
    ranked, schedule = data
    idx = jnp.asarray(schedule.indices(ranked, epoch - 1))
    x, y = jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)
  scale = jnp.float32(training.clipped_ce_scale(epoch, e.clip_epochs, e.clip_start))
  previous = state.params
  state, loss, acc = programs.epoch(state, lr, x, y, jax.random.fold_in(train_key, epoch),
                                    scale)
  metrics = {"train_loss": float(loss), "train_acc": float(acc),
             "train_size": int(x.shape[0]),
             "step_sq_distance": float(programs.step_distance(state.params, previous)),
             "seconds": round(time.perf_counter() - t0, 3)}
  if e.eval_test:
    metrics["test_acc"] = _test_accuracy(programs, state, arrays)
  return state, metrics


class _Progress:
  """The progress line after each expert epoch, with the ETA of the whole training; a
  heartbeat line every 30 s inside an epoch (dd_jax.progress)."""

  def __init__(self, e):
    self.e, self.start, self.epochs_run = e, time.perf_counter(), 0
    self.epoch_s: float | None = None   # the last epoch's seconds
    self.left = e.num_experts * e.epochs

  def announce(self, index: int, epoch: int) -> None:
    """Epoch `epoch` of expert `index` starts (the heartbeat says so while it runs)."""
    e = self.e
    what = f"expert {index + 1}/{e.num_experts} epoch {epoch}/{e.epochs}"
    if self.epoch_s is None:
      heartbeat.doing(what + " (compiling the epoch's program first)")
    else:
      self.left = (e.num_experts - index) * e.epochs - epoch
      heartbeat.doing(what, self.epoch_s, self.left * self.epoch_s)

  def log(self, index: int, epoch: int, metrics: dict) -> None:
    e = self.e
    self.epochs_run += 1
    done = index * e.epochs + epoch
    elapsed = time.perf_counter() - self.start
    test = metrics.get("test_acc")
    logging.info("expert %d/%d epoch %d/%d: loss %.4f train %.2f%% test %s (%.1fs), "
                 "ETA %.0fs", index + 1, e.num_experts, epoch, e.epochs, metrics["train_loss"],
                 100 * metrics["train_acc"], "-" if test is None else f"{100 * test:.2f}%",
                 metrics["seconds"],
                 elapsed / self.epochs_run * (e.num_experts * e.epochs - done))
    heartbeat.logged()
    self.epoch_s = metrics["seconds"]
