"""SeqMatch: the IPC budget distilled as K subsets, one after another.

Subset k starts from its own real images (a disjoint slice of the initial set of the
whole IPC, so DATM's correct-init/soft labels and AST's K-Means init apply unchanged),
matches its own start window with its own syn_steps, iterations and learning rates
(`seqmatch.*` tuples, one value per subset; () = the `distill` value), and trains the
student on the union of the frozen earlier subsets and itself: the earlier ones join
the inner batches as step arguments and never change. Each subset is an ordinary
`Distiller` run in its own folder, so the whole sequence resumes where it stopped:

  distill/run.json          the SeqMatch config (a different one is refused)
  distill/initial.npz       the initial images/labels of the whole IPC (all subsets)
  distill/subset_<k>/       subset k's run: run.json, ckpt/, evals.json
  distill/subset_<k>.npz    subset k once finished: images, labels, learned lr

Which trajectory segment a later subset matches (seqmatch.txt, section 3: the subset
"is encouraged to match the corresponding segment of the teacher trajectory to condense
the knowledge in the latter epoch"): by default (`seqmatch.experts="warm_start"`, the
paper's Table 4 and the official code) subset k > 1 matches experts trained from nets
first trained sequentially on the earlier subsets, so its window, counted from epoch 0
of those experts, is training that comes after what S1..S(k-1) hold; Table 4's "Max
Start Epoch" per subset ({20, 10} for CIFAR-10 IPC 10) is read on each subset's own
experts. `"shared"` (ours, no extra experts) matches one set of experts with each later
subset's window placed after the previous one's (validated). On IDC the warm start
gives the matching nets' starts instead (`idc.NetInit`, one per `idc.fix_iter` steps).

Evaluation reports the ordinary protocol on the union next to SeqMatch's sequential
one (one net trained on S1, then S1+S2, ..., each stage at its subset's learned lr).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import os
from typing import Callable

import jax
import ml_collections
import numpy as np

from dd_jax.data import pipeline
from dd_jax.distill import loop, stage as stage_lib
from dd_jax.distill import workdir as workdir_lib
from dd_jax.distill.methods import METHODS, PARAMETERIZATIONS
from dd_jax.distill.validation import validate_run
from dd_jax.errors import require
from dd_jax.evaluate import protocol
from dd_jax.metadata import read_npz, write_npz_atomic

# seqmatch.<tuple> -> the distill field it sets per subset
PER_SUBSET = {"min_start_epochs": "min_start_epoch", "max_start_epochs": "max_start_epoch",
              "syn_steps": "syn_steps", "iterations": "iterations", "lr_img": "lr_img",
              "lr_lr": "lr_lr", "lr_teacher": "lr_teacher",
              "expert_epochs": "expert_epochs"}
EXPERTS = ("shared", "warm_start")


def enabled(config: ml_collections.ConfigDict) -> bool:
  return bool(config.seqmatch.subsets)


@dataclasses.dataclass
class Subset:
  """A finished subset: its images and labels (class-grouped) and learned lr."""
  images: np.ndarray
  labels: np.ndarray
  lr: float


@dataclasses.dataclass
class Stage:
  """What a subset's `Distiller` needs beyond its config."""
  index: int                    # 0-based
  sizes: tuple[int, ...]        # images per class of every subset
  run_dir: str
  earlier: list[Subset]         # the frozen subsets before this one
  # this subset's initial images and labels, given the subset's Distiller
  initial: Callable[[object], tuple[np.ndarray, np.ndarray]]
  step_offset: int              # outer steps of the earlier subsets (logs, sampling)
  warm_start: "WarmStart | None" = None

  @property
  def label(self) -> str:
    return f"subset {self.index + 1}/{len(self.sizes)} "

  @property
  def sequential(self) -> bool:   # sequential evaluation once there are earlier subsets
    return self.index > 0

  @property
  def rng_index(self) -> int:
    return self.index

  def export_meta(self, lr: float, per_image: int) -> dict:
    """Which rows belong to which subset (`per_image` decoded rows per stored image),
    and their lrs."""
    return {"seqmatch": {"subsets": [n * per_image for n in self.sizes[:self.index + 1]],
                         "lrs": [s.lr for s in self.earlier] + [lr]}}

  def frozen(self) -> tuple[np.ndarray, np.ndarray] | None:
    """The union of the earlier subsets, or None for the first."""
    if not self.earlier:
      return None
    return (np.concatenate([s.images for s in self.earlier]),
            np.concatenate([s.labels for s in self.earlier]))

  def parts(self, images, labels) -> list[tuple[np.ndarray, np.ndarray]]:
    """The earlier subsets, then this one."""
    return [(s.images, s.labels) for s in self.earlier] + [(images, labels)]

  def after_step(self, distiller, state, done: int, metrics: dict | None = None) -> None:
    """Nothing after a subset's steps (H-PD's spaces keep their best latents here)."""

  def sequence(self, images, labels, lr: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Sequential evaluation's stages: S1, S1+S2, ..., up to this subset at `lr`."""
    return _unions(self.earlier + [Subset(np.asarray(images), np.asarray(labels), lr)])


@dataclasses.dataclass
class WarmStart:
  """The official code's experts for subset k > 1: each starts from a net trained on
  S1, then S1+S2, ... (the evaluation protocol, `epochs` per stage at each subset's
  lr), then trains on the real data as usual."""
  stages: list[tuple[np.ndarray, np.ndarray, float]]
  epochs: int
  eval_config: ml_collections.ConfigDict

  def spec(self) -> dict:
    """Part of the experts' stored spec: folders warm-started otherwise are refused."""
    h = hashlib.sha256()
    for images, labels, lr in self.stages:
      h.update(np.ascontiguousarray(images, np.float32).tobytes())
      h.update(np.ascontiguousarray(labels).tobytes())
      h.update(np.float64(lr).tobytes())
    ev = self.eval_config
    spec = {"subsets": h.hexdigest()[:16], "epochs": self.epochs,
            "momentum": ev.momentum, "weight_decay": ev.weight_decay,
            "batch_size": ev.batch_size, "dsa_strategy": ev.dsa_strategy}
    if ev.protocol != protocol.DEFAULT_RECIPE:   # folders stored before it stay valid
      spec["protocol"] = ev.protocol
    return spec

  def __call__(self, model, key: jax.Array, sample) -> tuple:
    """(params, batch_stats) of a net from `key` trained on the stages."""
    from dd_jax.evaluate import protocol
    ev = self.eval_config
    del sample   # the stages' images give the input shape
    states, _ = protocol.train_sequential(
        model, self.stages, key[None], jax.random.fold_in(key, 1)[None],
        epochs=self.epochs, batch_size=ev.batch_size, momentum=ev.momentum,
        weight_decay=ev.weight_decay, dsa_strategy=ev.dsa_strategy,
        chunk_epochs=ev.chunk_epochs, name="warm start", protocol=ev.protocol)
    first = lambda tree: jax.tree.map(lambda x: x[0], tree)
    return first(states.params), first(states.batch_stats)


def _field(name: str, k: int | None = None) -> str:
  return f"seqmatch.{name}" + (f"[{k}]" if k is not None else "")


def validate(config: ml_collections.ConfigDict) -> None:
  """SeqMatch's own fields, each subset's window against the trajectories, then every
  subset's config as an ordinary run."""
  s, d = config.seqmatch, config.distill
  sizes = tuple(s.subsets)
  count = len(sizes)
  for k, size in enumerate(sizes):
    require(isinstance(size, int) and size >= 1, _field("subsets", k), f"is {size!r}",
            "every subset needs at least one image per class: drop empty subsets")
  require(sum(sizes) == d.ipc, _field("subsets"),
          f"{sizes} sum to {sum(sizes)} images per class, but distill.ipc is {d.ipc}",
          f"give sizes that sum to distill.ipc, e.g. {_even_split(d.ipc)}")
  for name in PER_SUBSET:
    values = tuple(s[name])
    require(len(values) in (0, count), _field(name),
            f"has {len(values)} values for {count} subsets",
            f"give one value per subset, or () for distill.{PER_SUBSET[name]} everywhere")
  require(s.experts in EXPERTS, _field("experts"), f"unknown {s.experts!r}",
          f"use one of {', '.join(EXPERTS)}")
  if s.experts == "warm_start":
    require(s.warm_start_epochs >= 1, _field("warm_start_epochs"),
            f"is {s.warm_start_epochs}", "train each warm-start stage >= 1 epoch, e.g. 1000")
  param = PARAMETERIZATIONS.get(d.parameterization)
  require(param is None or not param.latent, "distill.parameterization",
          "SeqMatch with GLaD latents is not available yet",
          "use distill.parameterization='pixels' with seqmatch.subsets")
  method = METHODS.get(d.method)
  splittable = [name for name, m in METHODS.items() if m.seqmatch]
  require(method is not None and method.seqmatch, "distill.method",
          f"SeqMatch runs on {' or '.join(splittable)}, not {d.method}",
          f"use distill.method={' or '.join(map(repr, splittable))}, or "
          "seqmatch.subsets=() for the others")
  stored = config.expert.epochs
  for k in range(count if method.uses_experts else 0):   # start windows: trajectories only
    lo, hi = _value(config, "min_start_epochs", k), _value(config, "max_start_epochs", k)
    m = _value(config, "expert_epochs", k)
    require(0 <= lo < hi, _field("min_start_epochs", k),
            f"subset {k + 1}'s window starts at {lo}, its max_start_epoch is {hi}",
            "use 0 <= min start < max start for every subset")
    last = hi - 1 + m
    require(last <= stored, _field("max_start_epochs", k),
            f"subset {k + 1}'s start epochs up to {hi - 1} plus expert_epochs={m} reach "
            f"epoch {last}, beyond the experts' {stored} epochs",
            f"lower it to <= {stored - m + 1} or train longer experts (expert.epochs)")
    if k and s.experts == "shared":   # one set of experts: later subsets, later epochs
      before = (_value(config, "min_start_epochs", k - 1),
                _value(config, "max_start_epochs", k - 1))
      require(lo >= before[0] and hi > before[1], _field("min_start_epochs", k),
              f"subset {k + 1}'s start window [{lo}, {hi}) does not lie after subset "
              f"{k}'s [{before[0]}, {before[1]}) on the shared experts",
              f"place each later subset's window later (e.g. [{before[1]}, "
              f"{before[1] + hi - lo})), or use seqmatch.experts='warm_start'")
    if d.current_max_start_epoch:
      require(lo < d.current_max_start_epoch <= hi, "distill.current_max_start_epoch",
              f"is {d.current_max_start_epoch}, outside subset {k + 1}'s window "
              f"({lo}, {hi}]", "give a value inside every subset's window, or 0")
  for k in range(count):
    validate_run(stage_config(config, k, num_classes=1))


def _even_split(ipc: int) -> tuple[int, ...]:
  return (ipc - ipc // 2, ipc // 2) if ipc > 1 else (1,)


def _value(config, name: str, k: int):
  values = tuple(config.seqmatch[name])
  return values[k] if values else config.distill[PER_SUBSET[name]]


def stage_config(config: ml_collections.ConfigDict, k: int,
                 num_classes: int) -> ml_collections.ConfigDict:
  """Subset k's run as an ordinary config: ipc = its size, its per-subset values, and
  (batch_syn 0) the official default of one batch the size of the subset."""
  c = copy.deepcopy(config)
  size = config.seqmatch.subsets[k]
  with c.unlocked():
    c.distill.ipc = size
    for name, field in PER_SUBSET.items():
      c.distill[field] = _value(config, name, k)
    if not config.distill.batch_syn:
      c.distill.batch_syn = num_classes * size
    c.seqmatch.subsets = ()
    for name in PER_SUBSET:
      c.seqmatch[name] = ()
  return c


def slice_subset(images: np.ndarray, labels: np.ndarray, num_classes: int,
                 sizes: tuple[int, ...], k: int) -> tuple[np.ndarray, np.ndarray]:
  """Subset k's rows of a class-grouped set of sum(sizes) images per class."""
  ipc, offset = sum(sizes), sum(sizes[:k])
  rows = np.concatenate([c * ipc + offset + np.arange(sizes[k]) for c in range(num_classes)])
  return images[rows], labels[rows]


class SequentialDistiller(stage_lib.StagedRun):
  """Runs the subsets in order; a restarted run skips finished subsets and resumes the
  current one from its checkpoint."""
  validate = staticmethod(validate)

  def __init__(self, config: ml_collections.ConfigDict, workdir: str,
               prepared: pipeline.Prepared | None = None):
    super().__init__(config, workdir, prepared)
    self.sizes = tuple(config.seqmatch.subsets)

  def _subset_path(self, k: int) -> str:
    return os.path.join(self.run_dir, f"subset_{k + 1}.npz")

  def _initial(self, k: int, distiller) -> tuple[np.ndarray, np.ndarray]:
    """Subset k's slice of the initial set of the whole IPC, built once (by the first
    subset's run, from the shared experts when DATM/AST need them) and stored."""
    path = os.path.join(self.run_dir, "initial.npz")
    if not os.path.exists(path):
      images, labels = distiller.initial_set(self.config.distill)
      write_npz_atomic(path, images=images, labels=labels)
    stored = read_npz(path)
    return slice_subset(stored["images"], stored["labels"], self.prepared.num_classes,
                        self.sizes, k)

  def run(self) -> str:
    workdir_lib.record_workdir(self.run_dir, self.identity)
    earlier, offset, summary = [], 0, ""
    num_classes = self.prepared.num_classes
    for k in range(len(self.sizes)):
      config = stage_config(self.config, k, num_classes)
      if os.path.exists(self._subset_path(k)):
        stored = read_npz(self._subset_path(k))
        earlier.append(Subset(stored["images"], stored["labels"], float(stored["lr"])))
        offset += config.distill.iterations
        continue
      warm = None
      if k and self.config.seqmatch.experts == "warm_start":
        method = METHODS[config.distill.method]   # nets train on decoded images (IDC)
        stages = [(*method.decode(config, x, y), lr) for x, y, lr in _unions(earlier)]
        if method.uses_experts:   # subset k's own experts
          with config.unlocked():
            config.expert.dir = os.path.join(self.run_dir, f"subset_{k + 1}", "experts")
        warm = WarmStart(stages, self.config.seqmatch.warm_start_epochs, self.config.eval)
      stage = Stage(index=k, sizes=self.sizes,
                    run_dir=os.path.join(self.run_dir, f"subset_{k + 1}"),
                    earlier=list(earlier), initial=functools.partial(self._initial, k),
                    step_offset=offset, warm_start=warm)
      distiller = loop.Distiller(config, self.workdir, self.prepared, stage=stage)
      summary = distiller.run()
      state = distiller.final_state
      subset = Subset(np.asarray(state.images), np.asarray(state.labels),
                      distiller.syn_lr(state))
      write_npz_atomic(self._subset_path(k), images=subset.images, labels=subset.labels,
                lr=np.float32(subset.lr))
      earlier.append(subset)
      offset += config.distill.iterations
    return summary or f"all {len(self.sizes)} subsets were already distilled"


def _unions(subsets: list[Subset]) -> list[tuple[np.ndarray, np.ndarray, float]]:
  """S1, S1+S2, ... with each subset's lr."""
  out = []
  for i, s in enumerate(subsets):
    out.append((np.concatenate([p.images for p in subsets[:i + 1]]),
                np.concatenate([p.labels for p in subsets[:i + 1]]), s.lr))
  return out
