"""PAD's data scheduler: kept fractions per epoch for classes of any size."""
import numpy as np
import pytest

from dd_jax.errors import ConfigError
from dd_jax.experts.schedule import DataSchedule, StaticPrune


@pytest.mark.parametrize("n", [1, 7, 600, 5_000])
def test_kept_windows_follow_the_schedule_for_any_class_size(n):
  s = DataSchedule(initial_ratio=0.75, addition_end=20, removal_epochs=(40, 60),
                   removal_fractions=(0.1, 0.2))
  want = {0: (0, int(0.75 * n)), 10: (0, int(0.875 * n)), 20: (0, n), 21: (0, n),
          40: (0, n), 41: (int(0.1 * n), n), 60: (int(0.1 * n), n), 61: (int(0.2 * n), n),
          99: (int(0.2 * n), n)}
  for epoch, (start, stop) in want.items():
    start, stop = min(start, n - 1), max(1, stop)     # a class never empties
    assert s.window(epoch, n) == (start, stop), (epoch, n)
  sizes = [s.window(e, n)[1] - s.window(e, n)[0] for e in range(21)]
  assert sizes == sorted(sizes)                        # addition only grows


def test_indices_take_the_easiest_then_drop_the_easiest():
  ranked = [np.array([5, 3, 9, 1]), np.array([0, 2, 4, 6, 8, 7, 10, 11, 12, 13])]
  s = DataSchedule(initial_ratio=0.5, addition_end=2, removal_epochs=(3,),
                   removal_fractions=(0.25,))
  assert s.indices(ranked, 0).tolist() == [5, 3, 0, 2, 4, 6, 8]
  assert s.indices(ranked, 3).tolist() == [5, 3, 9, 1] + ranked[1].tolist()
  assert s.indices(ranked, 4).tolist() == [3, 9, 1] + ranked[1][2:].tolist()


def test_bad_schedules_are_one_clear_error():
  with pytest.raises(ConfigError, match=r"^expert\.schedule\.removal_epochs: the first "
                                        r"removal .* comes before addition ends"):
    DataSchedule(addition_end=30, removal_epochs=(20, 40),
                 removal_fractions=(0.1, 0.2)).validate("expert.schedule")
  with pytest.raises(ConfigError, match=r"removal_fractions: 1\.0 is outside"):
    DataSchedule(removal_epochs=(40, 60),
                 removal_fractions=(0.1, 1.0)).validate("expert.schedule")
  with pytest.raises(ConfigError, match=r"initial_ratio: is 0"):
    DataSchedule(initial_ratio=0.0).validate("expert.schedule")
  DataSchedule().validate("expert.schedule")   # the paper's: one removal of 10%
  assert (DataSchedule().removal_epochs, DataSchedule().removal_fractions) == ((40,), (0.1,))


def test_static_pruning_removes_the_hardest_or_easiest_share_every_epoch():
  ranked = [np.arange(10), np.arange(10, 14)]          # easiest first
  hard = StaticPrune(prune="hard", fraction=0.2)
  easy = StaticPrune(prune="easy", fraction=0.25)
  for epoch in (0, 5, 99):                             # the same every epoch
    assert hard.indices(ranked, epoch).tolist() == list(range(8)) + [10, 11, 12, 13]
    assert easy.indices(ranked, epoch).tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]
  assert hard.window(0, 1) == (0, 1) and easy.window(0, 1) == (0, 1)   # never empty
  with pytest.raises(ConfigError, match=r"^expert\.schedule\.prune: unknown 'middle'"):
    StaticPrune(prune="middle").validate("expert.schedule")
  with pytest.raises(ConfigError, match=r"^expert\.schedule\.prune_fraction: 1\.0"):
    StaticPrune(fraction=1.0).validate("expert.schedule")
