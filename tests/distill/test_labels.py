"""DATM: soft labels from correct experts, correctly-classified init, the start window,
the loss-threshold skip."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from dd_jax.distill import labels, run, segments
from dd_jax.errors import ConfigError
from tests.distill.conftest import _config, _synset


def test_soft_labels_average_only_the_experts_that_are_right():
  # 3 experts, 3 images of classes (0, 1, 2), 3 classes.
  logits = np.array([
      [[3., 0, 0], [0, 1, 0], [5., 0, 0]],     # expert 0: right, right, wrong
      [[1., 2, 0], [0, 3, 1], [0, 1., 0]],     # expert 1: wrong, right, wrong
      [[2., 1, 0], [1, 0, 0], [0, 2., 0]],     # expert 2: right, wrong, wrong
  ])
  soft, unmatched = labels.soft_labels(logits, np.array([0, 1, 2]))
  np.testing.assert_allclose(soft[0], ([3, 0, 0] + np.array([2, 1, 0])) / 2)
  np.testing.assert_allclose(soft[1], (np.array([0, 1, 0]) + [0, 3, 1]) / 2)
  np.testing.assert_allclose(soft[2], logits[:, 2].mean(0))   # none right: plain mean
  assert unmatched == 1
  probs = jax.nn.softmax(soft, axis=-1)
  np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, rtol=1e-6)
  assert np.asarray(probs)[:2].argmax(-1).tolist() == [0, 1]


class Probe(nn.Module):
  """Logits = the first num_classes pixels (times a kernel the test sets)."""
  classes: int = 3

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(self.classes)(x.reshape(len(x), -1))


def _probe_data(rng, per_class=40):
  y = np.repeat(np.arange(3), per_class).astype(np.int32)
  x = rng.normal(size=(len(y), 1, 1, 3)).astype(np.float32)
  x[np.arange(len(y)), 0, 0, y] += 1.0    # the class feature usually wins
  return x, y


def _probe_params(kernel, bias=(0., 0., 0.)):
  return {"Dense_0": {"kernel": np.asarray(kernel, np.float32),
                      "bias": np.asarray(bias, np.float32)}}


def test_correct_init_picks_real_images_the_expert_classifies_correctly():
  x, y = _probe_data(np.random.default_rng(0))
  model, params = Probe(), _probe_params(np.eye(3))
  idx = labels.select_correct(model, params, x, y, 3, ipc=4, seed=1, chunk=16)
  assert y[idx].tolist() == [0] * 4 + [1] * 4 + [2] * 4
  assert (x[idx, 0, 0].argmax(-1) == y[idx]).all()        # each one classified correctly
  assert len(set(idx.tolist())) == 12
  again = labels.select_correct(model, params, x, y, 3, ipc=4, seed=1, chunk=16)
  other = labels.select_correct(model, params, x, y, 3, ipc=4, seed=2, chunk=16)
  assert idx.tolist() == again.tolist() and idx.tolist() != other.tolist()


def test_experts_that_classify_nothing_correctly_are_one_clear_error():
  x, y = _probe_data(np.random.default_rng(0))
  always_zero = _probe_params(np.zeros((3, 3)), bias=(1., 0., 0.))   # predicts class 0
  with pytest.raises(ConfigError, match=r"^distill\.label_epoch: the first label expert "
                                        r"classifies only 0 of class 1's 40 training"):
    labels.select_correct(Probe(), always_zero, x, y, 3, ipc=2, seed=0)

  class D:
    pix_init, soft_labels, ipc = "real", True, 1
  base = lambda: (x[[50, 90]], np.array([1, 2], np.int32))   # classes 1, 2: never right
  with pytest.raises(ConfigError, match=r"^distill\.soft_labels: none of the 1 label "
                                        r"experts classifies any initial synthetic image"):
    labels.initial_set(D, Probe(), [always_zero], x, y, 3, 0, base)


def test_expert_order_cycle_uses_each_expert_once_per_round():
  """'cycle' (the official code's default): every round of len(experts) segments holds
  each expert once, in an order that changes between rounds; 'draw' (the papers') is
  random per step; both draw the same start epochs and repeat from (seed, step)."""
  w, experts = segments.StartWindow(max_start=7), [4, 5, 6]
  cycle = [segments.sample_segment(1, s, experts, w, order="cycle") for s in range(60)]
  draw = [segments.sample_segment(1, s, experts, w) for s in range(60)]
  rounds = [[e for e, _ in cycle[r:r + 3]] for r in range(0, 60, 3)]
  assert all(sorted(r) == experts for r in rounds)
  assert len({tuple(r) for r in rounds}) > 1                 # reshuffled between rounds
  assert any(sorted(e for e, _ in draw[r:r + 3]) != experts for r in range(0, 60, 3))
  assert [t for _, t in cycle] == [t for _, t in draw]
  assert cycle == [segments.sample_segment(1, s, experts, w, order="cycle")
                   for s in range(60)]
  # several segments a step: the rounds run over the segments of consecutive steps
  multi = [e for s in range(6)
           for e, _ in segments.sample_segments(1, s, experts, w, 2, order="cycle")]
  assert all(sorted(multi[r:r + 3]) == experts for r in range(0, 12, 3))


def test_the_start_window_expands_as_datm():
  w = segments.StartWindow(max_start=20, min_start=0, current_max=10, expansion_end=1000)
  assert [w.upper(s) for s in (0, 99, 100, 500, 999, 1000, 5000)] == [10, 10, 11, 15, 19,
                                                                       20, 20]
  epochs = [segments.sample_segment(0, s, [0, 1], w)[1] for s in range(200)]
  assert 0 <= min(epochs) and max(epochs) <= 10
  fixed = segments.StartWindow(max_start=5, min_start=2)
  assert {segments.sample_segment(0, s, [0], fixed)[1] for s in range(200)} == {2, 3, 4}
  # Without a window option, the draws are MTT's U{0..max-1}, as before.
  mtt = segments.StartWindow(max_start=7)
  rng = np.random.default_rng([3, 11])
  rng.integers(2)
  assert segments.sample_segment(3, 11, [0, 1], mtt)[1] == int(rng.integers(7))
  for bad, field in [(dict(min_start=5), "min_start_epoch"),
                     (dict(current_max=25, expansion_end=10), "current_max_start_epoch"),
                     (dict(current_max=10), "expansion_end")]:
    with pytest.raises(ConfigError, match=rf"^distill\.{field}"):
      segments.StartWindow(max_start=5 if field == "min_start_epoch" else 20,
                           **bad).validate()


def test_a_datm_run_learns_soft_labels_and_evaluates_with_them(shared, tmp_path):
  config = _config(*shared, soft_labels=True, lr_y=5.0, eval_every=4,
                   current_max_start_epoch=1, max_start_epoch=2, expansion_end=2)
  distiller = run.Distiller(config, str(tmp_path))
  init = distiller.initial_state()
  assert init.labels.shape == (10, 10) and init.labels.dtype == np.float32
  assert "ConvNet at step 4" in distiller.run()
  out = _synset(str(tmp_path))
  assert out["labels"].shape == (10, 10)
  assert not np.allclose(out["labels"], np.asarray(init.labels))   # the labels learned
  np.testing.assert_allclose(np.asarray(jax.nn.softmax(out["labels"])).sum(-1), 1,
                             rtol=1e-5)


def test_a_step_above_the_loss_threshold_changes_nothing(shared, tmp_path):
  config = _config(*shared, soft_labels=True, loss_threshold=1e-9, iterations=2)
  distiller = run.Distiller(config, str(tmp_path))
  init = distiller.initial_state()
  distiller.run()
  out = _synset(str(tmp_path))
  np.testing.assert_array_equal(out["images"], np.asarray(init.images))
  np.testing.assert_array_equal(out["labels"], np.asarray(init.labels))
