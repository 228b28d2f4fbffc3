"""Where one run of the loop sits in a staged run, and the staged runs' common start.

The loop (distill/loop.py) reads a `Stage`: its folder, its first outer step among the
stages (logs, segment sampling), the frozen earlier subsets, its initial set, and
hooks after each step and at export. A run on its own has the `Single` stage. Staged
runs sit above the loop and hand it their stages: SeqMatch's subsets
(distill/seqmatch.py) and H-PD's generator spaces (distill/hpd.py); the loop never
imports them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Protocol

import ml_collections
import numpy as np

from dd_jax.data import pipeline
from dd_jax.distill import workdir as workdir_lib
from dd_jax.distill.validation import validate_against_data


class Stage(Protocol):
  run_dir: str                 # the run's folder (run.json, ckpt/, evals.json)
  step_offset: int             # outer steps of the stages before this one
  warm_start: Any              # SeqMatch's warm start of the experts (or None)
  label: str                   # "subset 2/2 " in the logs ("" on its own)
  sequential: bool             # SeqMatch's sequential evaluation applies
  rng_index: int | None        # the state's rng is folded with 1000 + this
  initial: Callable | None     # initial(distiller) -> (images, labels); None: the method's

  def frozen(self) -> tuple[np.ndarray, np.ndarray] | None:
    """The earlier subsets the inner batches draw from, or None."""

  def parts(self, images, labels) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stored set so far, part by part (earlier subsets, then this run's)."""

  def sequence(self, images, labels, lr: float) -> list[tuple]:
    """SeqMatch's sequential evaluation stages up to this one."""

  def export_meta(self, lr: float, per_image: int) -> dict:
    """Metadata of the exported set (`per_image`: decoded images per stored one)."""

  def after_step(self, distiller, state, done: int, metrics: dict | None = None) -> None:
    """Called at the start (done = 0) and after every step."""


class OnePart:
  """A stage with no earlier subsets: nothing frozen, its set is the whole set."""

  def frozen(self):
    return None

  def parts(self, images, labels):
    return [(images, labels)]

  def sequence(self, images, labels, lr):
    return [(images, labels, lr)]

  def export_meta(self, lr: float, per_image: int) -> dict:
    return {}

  def after_step(self, distiller, state, done: int, metrics: dict | None = None) -> None:
    pass


@dataclasses.dataclass
class Single(OnePart):
  """The stage of a run on its own."""
  run_dir: str
  step_offset: int = 0
  warm_start: Any = None
  label: str = ""
  sequential: bool = False
  rng_index: int | None = None
  initial: Callable | None = None


class StagedRun:
  """A run made of several loop runs (SeqMatch's subsets, H-PD's layers): the config
  checked (`validate`, the subclass's), the data prepared, the workdir claimed."""

  @staticmethod
  def validate(config: ml_collections.ConfigDict) -> None:
    raise NotImplementedError

  def __init__(self, config: ml_collections.ConfigDict, workdir: str,
               prepared: pipeline.Prepared | None = None):
    self.validate(config)
    self.config, self.workdir = config, workdir
    self.prepared = prepared or pipeline.prepare(config.data)
    validate_against_data(config, self.prepared)
    self.run_dir = os.path.join(workdir, "distill")
    self.identity = workdir_lib.run_identity(config, self.prepared)
    workdir_lib.check_workdir(self.run_dir, self.identity)
