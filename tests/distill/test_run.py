"""The distillation run: outputs, resumption, determinism, refusal of bad input."""
import json
import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from dd_jax.data import pipeline
from dd_jax.distill import loop, run, segments
from dd_jax.errors import ConfigError
from dd_jax.evaluate import run as eval_run
from tests.distill.conftest import _config, _synset


def test_run_writes_a_loadable_synthetic_set_and_compiles_once(shared, tmp_path):
  config = _config(*shared, eval_every=4)
  distiller = run.Distiller(config, str(tmp_path))
  init = np.asarray(distiller.initial_state().images)
  compiled_before = distiller.method.step_fn._cache_size()
  summary = distiller.run()
  assert distiller.method.step_fn._cache_size() <= compiled_before + 1   # no recompiles
  assert "distilled 4 steps" in summary and "ConvNet at step 4" in summary
  out = _synset(str(tmp_path))
  assert out["images"].shape == (10, 28, 28, 1) and out["labels"].tolist() == list(range(10))
  assert not np.allclose(out["images"], init)           # the images were optimised
  assert 0 < float(out["lr"]) and np.all((out["pixels"] >= 0) & (out["pixels"] <= 1))
  meta = json.loads(str(out["meta"]))
  assert meta["step"] == 4 and meta["config"]["distill"]["lr_img"] == config.distill.lr_img
  prepared = pipeline.prepare(config.data)
  images, labels, lr = eval_run.load_synset(os.path.join(tmp_path, "synset.npz"), prepared)
  np.testing.assert_array_equal(images, out["images"])
  assert lr == pytest.approx(float(out["lr"]))
  with open(tmp_path / "distill" / "evals.json") as f:
    evals = json.load(f)
  assert [e["step"] for e in evals] == [0, 4] and len(evals[1]["ConvNet"]["accuracies"]) == 2
  assert os.path.getsize(tmp_path / "synset.png") > 100
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(tmp_path))


@pytest.mark.parametrize("interval, logged", [(60.0, [4]), (0.0, [1, 2, 3, 4])])
def test_slow_steps_log_progress_between_log_every_writes(shared, tmp_path, monkeypatch,
                                                         caplog, interval, logged):
  monkeypatch.setattr(loop, "LOG_AT_LEAST_EVERY_S", interval)
  config = _config(*shared, log_every=100)
  with caplog.at_level(logging.INFO):
    run.Distiller(config, str(tmp_path)).run()
  lines = [r.getMessage() for r in caplog.records if "steps/s, ETA" in r.getMessage()]
  assert [int(m.split()[1].split("/")[0]) for m in lines] == logged


def _crash_at_step(monkeypatch, step, exc):
  real = segments.SnapshotSource.segment
  calls = []

  def segment(self, *args):
    calls.append(args)
    if len(calls) == step + 1:
      raise exc
    return real(self, *args)

  monkeypatch.setattr(segments.SnapshotSource, "segment", segment)


@pytest.mark.parametrize("exc, resumes_from", [(RuntimeError("power cut"), 2),
                                               (KeyboardInterrupt(), 3)])
def test_stopped_and_resumed_run_equals_an_uninterrupted_one(shared, tmp_path, monkeypatch,
                                                             exc, resumes_from):
  config = _config(*shared)
  run.Distiller(config, str(tmp_path / "straight")).run()
  want = _synset(str(tmp_path / "straight"))

  with monkeypatch.context() as m:
    _crash_at_step(m, 3, exc)
    with pytest.raises(type(exc)):
      run.Distiller(config, str(tmp_path / "stopped")).run()
  # A crash keeps the last periodic checkpoint; Ctrl-C saves the step it reached.
  ckpt = ocp.CheckpointManager(str(tmp_path / "stopped" / "distill" / "ckpt"))
  assert ckpt.latest_step() == resumes_from
  ckpt.close()
  run.Distiller(config, str(tmp_path / "stopped")).run()
  got = _synset(str(tmp_path / "stopped"))
  np.testing.assert_array_equal(got["images"], want["images"])
  assert float(got["lr"]) == float(want["lr"])


def test_a_longer_run_continues_from_a_finished_one(shared, tmp_path):
  run.Distiller(_config(*shared, iterations=2), str(tmp_path / "a")).run()
  run.Distiller(_config(*shared, iterations=4), str(tmp_path / "a")).run()
  run.Distiller(_config(*shared, iterations=4), str(tmp_path / "b")).run()
  np.testing.assert_array_equal(_synset(str(tmp_path / "a"))["images"],
                                _synset(str(tmp_path / "b"))["images"])


def test_a_workdir_of_another_config_is_refused(shared, tmp_path):
  run.Distiller(_config(*shared, iterations=1), str(tmp_path)).run()
  with pytest.raises(ConfigError, match=r"--workdir.*different config: "
                                        r"config\.distill\.lr_img"):
    run.Distiller(_config(*shared, iterations=1, lr_img=5.0), str(tmp_path))


def test_a_window_beyond_the_trajectories_is_refused_before_any_work(shared, tmp_path):
  config = _config(*shared, max_start_epoch=2, expert_epochs=2)   # reaches epoch 3 of 2
  with pytest.raises(ConfigError, match=r"distill\.max_start_epoch.*reaches epoch 3.*"
                                        r"stop at epoch 2"):
    run.Distiller(config, str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w")


@pytest.mark.parametrize("change, field", [
    ({"model.width": 4}, "model.width"),                      # another architecture
    ({"data.zca": True}, "data.preprocessing"),               # another preprocessing
    ({"data.train_per_class": 10}, "data.fingerprint"),       # another dataset
])
def test_experts_of_another_setup_are_refused(shared, tmp_path, change, field):
  config = _config(*shared)
  with config.unlocked():
    for key, value in change.items():
      section, name = key.split(".")
      config[section][name] = value
  with pytest.raises(ConfigError, match=rf"expert\.dir.*different setup: {field}"):
    run.Distiller(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "distill" / "run.json")   # the workdir is not pinned


def test_a_diverging_run_rolls_back_and_stops_with_a_clear_error(shared, tmp_path):
  # A student lr of 1e8 makes the inner loss overflow: every step is rejected.
  config = _config(*shared, lr_teacher=1e8, max_bad_steps=2)
  distiller = run.Distiller(config, str(tmp_path))
  init = np.asarray(distiller.initial_state().images)
  with pytest.raises(ConfigError, match=r"distill\.lr_img: 2 consecutive steps had a "
                                        r"non-finite loss"):
    distiller.run()
  ckpt = ocp.CheckpointManager(str(tmp_path / "distill" / "ckpt"), item_names=("state",))
  saved = ckpt.restore(ckpt.latest_step(), args=ocp.args.Composite(
      state=ocp.args.StandardRestore(distiller.initial_state()))).state
  ckpt.close()
  np.testing.assert_array_equal(np.asarray(saved.images), init)   # nothing corrupted
  assert int(saved.step) == 2


def test_depth_and_loss_masks_run_and_a_bad_ratio_is_one_clear_error(shared, tmp_path):
  config = _config(*shared, iterations=2, param_mask="depth", param_mask_ratio=0.5)
  distiller = run.Distiller(config, str(tmp_path / "ok"))
  assert "distilled 2 steps" in distiller.run()
  kept = sum(int(m.sum()) for m in jax.tree.leaves(distiller.mask))
  total = sum(int(m.size) for m in jax.tree.leaves(distiller.mask))
  assert kept == total - int(0.5 * total)
  loss_ranked = run.Distiller(_config(*shared, iterations=1, param_mask="loss",
                                      param_mask_ratio=0.25), str(tmp_path / "loss"))
  assert loss_ranked.mask is None and "distilled 1 steps" in loss_ranked.run()
  for bad in (1.0, -0.5):
    with pytest.raises(ConfigError, match=r"^distill\.param_mask_ratio: is .*outside "
                                          r"\[0, 1\)\. Fix"):
      run.Distiller(_config(*shared, param_mask="depth", param_mask_ratio=bad),
                    str(tmp_path / "bad"))
  assert not os.path.exists(tmp_path / "bad")


def test_several_experts_per_step_and_remat_policies_and_their_bad_values(shared, tmp_path):
  plain = run.Distiller(_config(*shared, iterations=2), str(tmp_path / "one"))
  plain.run()
  two = run.Distiller(_config(*shared, iterations=2, experts_per_step=2),
                      str(tmp_path / "two"))
  assert "distilled 2 steps" in two.run()
  assert not np.allclose(_synset(str(tmp_path / "two"))["images"],
                         _synset(str(tmp_path / "one"))["images"])
  run.Distiller(_config(*shared, iterations=2, remat_policy="dots"),
                str(tmp_path / "dots")).run()   # what remat keeps, not what it computes
  np.testing.assert_allclose(_synset(str(tmp_path / "dots"))["images"],
                             _synset(str(tmp_path / "one"))["images"], rtol=1e-5, atol=1e-5)
  for change, field in [(dict(experts_per_step=0), "distill.experts_per_step"),
                        (dict(remat_policy="all"), "distill.remat_policy")]:
    with pytest.raises(ConfigError, match=rf"^{field}: "):
      run.Distiller(_config(*shared, **change), str(tmp_path / "bad"))
  config = _config(*shared)
  config.mesh.experts = 2    # two expert devices, one segment per step
  with pytest.raises(ConfigError, match=r"^mesh\.experts: 2 devices cannot share"):
    run.Distiller(config, str(tmp_path / "bad"))
  assert not os.path.exists(tmp_path / "bad")
