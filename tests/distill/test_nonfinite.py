"""Non-finite steps: rolled back inside the compiled step, the lrs lowered, the run goes on;
repeated ones stop it with a clear error."""
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax.distill import run, segments, workdir
from dd_jax.errors import ConfigError
from tests.distill.conftest import _config


def _poison_target(monkeypatch, calls_to_poison):
  """The expert target of the given segment() calls (0-based) becomes NaN."""
  real = segments.SnapshotSource.segment
  calls = []

  def segment(self, *args):
    start, target = real(self, *args)
    calls.append(args)
    if len(calls) - 1 in calls_to_poison:
      target = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), target)
    return start, target

  monkeypatch.setattr(segments.SnapshotSource, "segment", segment)


def test_a_nan_step_is_rolled_back_and_the_run_continues_at_a_lower_lr(
    shared, tmp_path, monkeypatch, caplog):
  _poison_target(monkeypatch, {1})
  config = _config(*shared, nonfinite_lr_factor=0.25)
  distiller = run.Distiller(config, str(tmp_path))
  with caplog.at_level(logging.WARNING):
    assert "distilled 4 steps" in distiller.run()
  warnings = [r.getMessage() for r in caplog.records if "not finite" in r.getMessage()]
  assert len(warnings) == 1 and warnings[0].startswith("step 1: ")
  assert "updates now scaled by 0.25" in warnings[0]
  final = distiller.final_state
  assert float(final.update_scale) == 0.25 and int(final.step) == 4
  assert np.isfinite(np.asarray(final.images)).all() and np.isfinite(float(final.lr_param))


def test_the_rolled_back_step_changes_nothing_and_later_updates_shrink(shared, tmp_path):
  config = _config(*shared)
  distiller = run.Distiller(config, str(tmp_path))
  state = distiller.method.put(distiller.initial_state())
  full, metrics, _ = distiller.method.step(state, 0)
  assert metrics["finite"] and float(full.update_scale) == 1.0
  half, _, _ = distiller.method.step(
      state.replace(update_scale=jnp.float32(0.5)), 0)
  # The first step's update is -lr * gradient (no momentum yet): halved, up to the
  # float32 rounding of image + update (one ulp of values near 1 is 1.2e-7).
  for name in ("images", "lr_param"):
    before = np.asarray(getattr(state, name), np.float64)
    np.testing.assert_allclose(np.asarray(getattr(half, name)) - before,
                               0.5 * (np.asarray(getattr(full, name)) - before),
                               rtol=1e-4, atol=2.5e-7, err_msg=name)


def test_images_that_overflow_are_never_kept_and_the_run_stops(shared, tmp_path):
  # An image lr of 1e38: the first step sends the images to ~1e34, every later step's
  # loss overflows. Those steps are rolled back (the lower lr does not rescue them) and
  # max_bad_steps of them stop the run, with a checkpoint of the last finite images.
  config = _config(*shared, lr_img=1e38, max_bad_steps=3, nonfinite_lr_factor=0.5)
  distiller = run.Distiller(config, str(tmp_path))
  init = distiller.initial_state()
  with pytest.raises(ConfigError, match=r"distill\.lr_img: 3 consecutive steps had a "
                                        r"non-finite loss"):
    distiller.run()
  manager = workdir.checkpoint_manager(str(tmp_path / "distill"), 2)
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), init)
  saved = workdir.restore(manager, manager.latest_step(), target,
                       str(tmp_path / "distill"))
  manager.close()
  images = np.asarray(saved.images)
  assert np.isfinite(images).all() and np.abs(images).max() > 1e20   # step 0's, kept
  assert int(saved.step) == 4 and float(saved.update_scale) == 0.125


def test_the_factor_is_checked():
  from tests.conftest import tiny_idx_config
  config = tiny_idx_config("/nonexistent")
  with config.unlocked():
    config.distill.nonfinite_lr_factor = 0.0
  with pytest.raises(ConfigError, match=r"distill\.nonfinite_lr_factor: is 0\.0"):
    run.validate(config)
