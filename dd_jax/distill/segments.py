"""Which piece of which expert trajectory a step matches, streamed from Orbax.

The choice of (expert, start epoch) for step s depends only on (seed, s), so a resumed
run matches exactly the segments an uninterrupted one would. Snapshots are read from disk
on demand and kept in a small LRU cache bounded in bytes.
"""
from __future__ import annotations

import collections
from typing import Any

import jax
import numpy as np

from dd_jax.errors import ConfigError
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


def sample_segment(seed: int, step: int, experts: list[int],
                   max_start_epoch: int) -> tuple[int, int]:
  """(expert index, start epoch t ~ U{0..max_start_epoch-1}) for outer step `step`."""
  rng = np.random.default_rng([seed, step])
  expert = experts[int(rng.integers(len(experts)))]
  return expert, int(rng.integers(max_start_epoch))


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
