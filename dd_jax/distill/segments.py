"""Which piece of which expert trajectory a step matches, streamed from Orbax.

The choice of (expert, start epoch) for step s depends only on (seed, s), so a resumed
run matches exactly the segments an uninterrupted one would. Snapshots are read from disk
on demand and kept in a small LRU cache bounded in bytes.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any

import jax
import numpy as np

from dd_jax.errors import ConfigError, require
from dd_jax.experts.store import ExpertReader

Params = Any


def check_window(max_start_epoch: int, expert_epochs: int, stored_epochs: int,
                 where: str) -> None:
  """Start epochs 0..max_start_epoch-1 plus expert_epochs must stay inside the trajectory."""
  last = max_start_epoch - 1 + expert_epochs
  if last > stored_epochs:
    raise ConfigError(
        "distill.max_start_epoch",
        f"a start epoch up to {max_start_epoch - 1} plus distill.expert_epochs="
        f"{expert_epochs} reaches epoch {last}, but {where} stop at epoch {stored_epochs}",
        f"lower distill.max_start_epoch or distill.expert_epochs so that "
        f"max_start_epoch - 1 + expert_epochs <= {stored_epochs}, or train longer experts "
        f"(expert.epochs)")


@dataclasses.dataclass(frozen=True)
class StartWindow:
  """Where start epochs are drawn: t ~ U{min_start .. upper(step) - 1}.

  Without expansion (`current_max` = 0), upper = max_start (MTT). With it (DATM's
  difficulty-aligned window), upper grows from `current_max` to `max_start` over the
  first `expansion_end` outer steps: upper = min(max_start, current_max +
  int((max_start - current_max) * step / expansion_end)).
  """
  max_start: int
  min_start: int = 0
  current_max: int = 0
  expansion_end: int = 0

  @classmethod
  def from_config(cls, d) -> "StartWindow":
    return cls(max_start=d.max_start_epoch, min_start=d.min_start_epoch,
               current_max=d.current_max_start_epoch, expansion_end=d.expansion_end)

  def validate(self) -> None:
    require(0 <= self.min_start < self.max_start, "distill.min_start_epoch",
            f"is {self.min_start}, distill.max_start_epoch is {self.max_start}",
            "use 0 <= min_start_epoch < max_start_epoch")
    if self.current_max:
      require(self.min_start < self.current_max <= self.max_start,
              "distill.current_max_start_epoch",
              f"is {self.current_max}, outside ({self.min_start}, {self.max_start}] "
              "(min_start_epoch, max_start_epoch]",
              "start the window between min_start_epoch and max_start_epoch, or 0 for a "
              "fixed window")
      require(self.expansion_end >= 1, "distill.expansion_end", f"is {self.expansion_end}",
              "give the outer step at which the window reaches max_start_epoch (>= 1)")

  def upper(self, step: int) -> int:
    if not self.current_max:
      return self.max_start
    grown = self.current_max + int((self.max_start - self.current_max) * step
                                   / self.expansion_end)
    return min(self.max_start, grown)


EXPERT_ORDERS = ("draw", "cycle")


def sample_segment(seed: int, step: int, experts: list[int], window: StartWindow,
                   draw: int = 0, order: str = "draw", count: int = 1) -> tuple[int, int]:
  """(expert index, start epoch in the window at `step`) for outer step `step`; `draw`
  numbers the segments of a step that matches `count` (0 is the single-segment one).

  order "draw": the expert drawn at random at every step (MTT's Algorithm 1 as AST's
  Algorithm 1, line 3, writes it: tau ~ {tau_i}; the official code's --load_all).
  order "cycle": the official code's default, each expert once per round in an order
  reshuffled every round (its `random.shuffle(buffer)`), over the segments of all steps
  in turn. The start epoch is the same draw in both orders."""
  rng = np.random.default_rng([seed, step] + ([draw] if draw else []))
  expert = experts[int(rng.integers(len(experts)))]
  if order == "cycle":
    turn = step * count + draw
    shuffled = np.random.default_rng([seed, turn // len(experts), 1 << 30]).permutation(
        len(experts))
    expert = experts[int(shuffled[turn % len(experts)])]
  return expert, int(rng.integers(window.min_start, window.upper(step)))


def sample_segments(seed: int, step: int, experts: list[int], window: StartWindow,
                    count: int, order: str = "draw") -> list[tuple[int, int]]:
  """`count` (expert, start epoch) draws for one outer step (several experts matched at
  once); the first is `sample_segment`'s, so count=1 is MTT."""
  return [sample_segment(seed, step, experts, window, j, order, count)
          for j in range(count)]


class SnapshotSource:
  """Expert snapshots (start and target of a segment), cached up to `cache_bytes`."""

  def __init__(self, reader: ExpertReader, abstract_params: Params, cache_bytes: int):
    self.reader = reader
    self.abstract = abstract_params
    self.cache_bytes = cache_bytes
    self._cache: collections.OrderedDict[tuple[int, int], Params] = collections.OrderedDict()
    self._size = sum(int(np.prod(x.shape)) * x.dtype.itemsize
                     for x in jax.tree.leaves(abstract_params))
    self.reads = 0

  def get(self, expert: int, epoch: int) -> Params:
    key = (expert, epoch)
    if key in self._cache:
      self._cache.move_to_end(key)
      return self._cache[key]
    params = self.reader.params(expert, epoch, self.abstract)
    self.reads += 1
    if self._size <= self.cache_bytes:
      self._cache[key] = params
      while len(self._cache) * self._size > self.cache_bytes:
        self._cache.popitem(last=False)
    return params

  def segment(self, expert: int, start: int, expert_epochs: int) -> tuple[Params, Params]:
    return self.get(expert, start), self.get(expert, start + expert_epochs)

  def stacked(self, segments: list[tuple[int, int]], offsets: tuple[int, ...]
              ) -> list[Params]:
    """For each epoch offset k, the snapshots at start + k of every segment, stacked
    along a new leading axis (one entry per segment)."""
    return [jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]),
                         *[self.get(expert, start + k) for expert, start in segments])
            for k in offsets]
