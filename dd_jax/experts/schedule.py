"""PAD's data scheduler for expert training (FIEX): which real samples an epoch uses.

Per class, samples are ranked easiest first (by a difficulty score such as EL2N). For the
0-based epoch e (as the official loop counts):
  e <= addition_end:     the easiest fraction p = min(1, initial_ratio + (1 - initial_ratio)
                         * e / addition_end) of the class;
  then:                  the whole class;
  e > removal_epochs[k]: all but the easiest removal_fractions[k] (one-shot removals; the
                         latest epoch passed decides). The paper removes once (10%); the
                         official README's two stages (10% after 40, 20% after 60) are
                         the PAD configs' code=1.
Counts use each class's real size n_c (the official code assumes 5,000 per class), and a
class never drops to zero samples.

`StaticPrune` (expert.data_schedule "prune") removes one fraction of each class for the
whole run instead: its hardest (`prune="hard"`) or its easiest (`"easy"`). PAD applies it
to DC and DM (pad.txt Appendix A.1, Table 6: hard samples removed at small IPC, easy ones
at large IPC); the official buffer_RM.py does the same for experts.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from dd_jax.errors import require


@dataclasses.dataclass(frozen=True)
class DataSchedule:
  initial_ratio: float = 0.75
  addition_end: int = 20
  removal_epochs: tuple[int, ...] = (40,)
  removal_fractions: tuple[float, ...] = (0.1,)

  @classmethod
  def from_config(cls, section) -> "DataSchedule":
    return cls(initial_ratio=section.initial_ratio, addition_end=section.addition_end,
               removal_epochs=tuple(section.removal_epochs),
               removal_fractions=tuple(section.removal_fractions))

  def validate(self, prefix: str) -> None:
    """ConfigErrors name `<prefix>.<field>`."""
    require(0.0 < self.initial_ratio <= 1.0, f"{prefix}.initial_ratio",
            f"is {self.initial_ratio}", "use a fraction in (0, 1]")
    require(self.addition_end >= 0, f"{prefix}.addition_end", f"is {self.addition_end}",
            "use an epoch >= 0")
    require(len(self.removal_epochs) == len(self.removal_fractions),
            f"{prefix}.removal_fractions",
            f"{len(self.removal_fractions)} fractions for {len(self.removal_epochs)} "
            "removal epochs", "give one fraction per removal epoch")
    epochs = list(self.removal_epochs)
    require(epochs == sorted(set(epochs)), f"{prefix}.removal_epochs",
            f"{epochs} is not strictly increasing", "list the removal epochs in order")
    if epochs:
      require(epochs[0] >= self.addition_end, f"{prefix}.removal_epochs",
              f"the first removal (after epoch {epochs[0]}) comes before addition ends "
              f"(epoch {self.addition_end})",
              f"remove at epochs >= {prefix}.addition_end, or end addition earlier")
    for r in self.removal_fractions:
      require(0.0 <= r < 1.0, f"{prefix}.removal_fractions", f"{r} is outside [0, 1)",
              "drop a fraction in [0, 1) of each class")

  def window(self, epoch: int, n: int) -> tuple[int, int]:
    """[start, stop) into a class of n samples ranked easiest first, for 0-based epoch."""
    if epoch <= self.addition_end and self.addition_end > 0:
      p = min(1.0, self.initial_ratio + (1.0 - self.initial_ratio) * epoch / self.addition_end)
      return 0, max(1, int(p * n))
    removed = 0.0
    for after, fraction in zip(self.removal_epochs, self.removal_fractions):
      if epoch > after:
        removed = fraction
    return min(int(removed * n), n - 1), n

  def indices(self, ranked: list[np.ndarray], epoch: int) -> np.ndarray:
    """The dataset indices epoch `epoch` trains on; ranked[c] = class c's indices, easiest
    first."""
    return _indices(self, ranked, epoch)

  def spec(self) -> dict:
    """What experts trained under it depend on (as stored in experts.json)."""
    return {"name": "pad", "initial_ratio": self.initial_ratio,
            "addition_end": self.addition_end, "removal_epochs": list(self.removal_epochs),
            "removal_fractions": list(self.removal_fractions)}


PRUNE_SIDES = ("hard", "easy")


@dataclasses.dataclass(frozen=True)
class StaticPrune:
  """The same samples every epoch: each class less its hardest or easiest `fraction`."""
  prune: str = "hard"
  fraction: float = 0.1

  @classmethod
  def from_config(cls, section) -> "StaticPrune":
    return cls(prune=section.prune, fraction=section.prune_fraction)

  def validate(self, prefix: str) -> None:
    require(self.prune in PRUNE_SIDES, f"{prefix}.prune", f"unknown {self.prune!r}",
            "use 'hard' (remove the hardest samples) or 'easy'")
    require(0.0 <= self.fraction < 1.0, f"{prefix}.prune_fraction",
            f"{self.fraction} is outside [0, 1)", "remove a fraction in [0, 1) of each class")

  def window(self, epoch: int, n: int) -> tuple[int, int]:
    del epoch   # static
    removed = min(int(self.fraction * n), n - 1)
    return (0, n - removed) if self.prune == "hard" else (removed, n)

  def indices(self, ranked: list[np.ndarray], epoch: int) -> np.ndarray:
    return _indices(self, ranked, epoch)

  def spec(self) -> dict:
    return {"name": "prune", "prune": self.prune, "prune_fraction": self.fraction}


def _indices(schedule, ranked: list[np.ndarray], epoch: int) -> np.ndarray:
  parts = []
  for idx in ranked:
    start, stop = schedule.window(epoch, len(idx))
    parts.append(np.asarray(idx)[start:stop])
  return np.concatenate(parts)


SCHEDULES = {"pad": DataSchedule, "prune": StaticPrune}


def from_config(expert) -> DataSchedule | StaticPrune | None:
  """The schedule `expert.data_schedule` names ("none": None), from `expert.schedule`."""
  kind = SCHEDULES.get(expert.data_schedule)
  return None if kind is None else kind.from_config(expert.schedule)
