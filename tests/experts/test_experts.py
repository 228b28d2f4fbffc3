"""Experts: Orbax trajectories with metadata, resumption, refusal of mismatched folders."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax import models
from dd_jax.data import pipeline
from dd_jax.errors import ConfigError
from dd_jax.experts import store, train
from tests.conftest import tiny_idx_config


def _config(idx_dir, **expert):
  config = tiny_idx_config(idx_dir)
  with config.unlocked():
    config.expert.epochs = 3
    config.expert.update(expert)
  return config


def _abstract_params(config):
  model = models.from_config(config.model, 10)
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)),
                                           train=False)["params"])


def _all_params(directory, config):
  reader = store.ExpertReader(directory)
  like = _abstract_params(config)
  out = {(e, t): reader.params(e, t, like) for e in reader.experts
         for t in range(reader.epochs + 1)}
  reader.close()
  return out


def test_experts_are_stored_per_epoch_with_metadata(idx_dir, tmp_path):
  config = _config(idx_dir)
  directory = train.train_experts(config, str(tmp_path))
  spec = store.read_json(os.path.join(directory, store.SPEC_FILE))
  assert spec["model"]["arch"] == "ConvNet" and spec["epochs"] == 3
  assert spec["data"]["preprocessing"]["zca"] is False and spec["seed"] == 0
  assert spec["optimizer"] == {"name": "sgd", "lr": 0.01, "lr_schedule": "constant",
                               "momentum": 0.0, "weight_decay": 0.0, "batch_size": 32}
  reader = store.ExpertReader(directory, expected_spec=spec)
  assert reader.experts == [0, 1] and reader.epochs == 3
  meta = reader.metadata(0)
  assert [m["epoch"] for m in meta["metrics"]] == [0, 1, 2, 3] and meta["complete"]
  like = _abstract_params(config)
  p0, p3 = reader.params(0, 0, like), reader.params(0, 3, like)
  moved = [float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(p0), jax.tree.leaves(p3))]
  assert max(moved) > 0
  other = reader.params(1, 0, like)
  assert not np.allclose(jax.tree.leaves(p0)[0], jax.tree.leaves(other)[0])  # own inits
  with pytest.raises(ConfigError, match="epoch 4 is outside the stored 0..3"):
    reader.params(0, 4, like)


def test_lr_schedules():
  assert [train.epoch_lr("step", 1.0, e, 4) for e in (1, 2, 3, 4)] == [1, 1, 0.1, 0.1]
  cos = [train.epoch_lr("cosine", 1.0, e, 4) for e in (1, 2, 3, 4)]
  assert cos[0] == 1.0 and all(a > b for a, b in zip(cos, cos[1:])) and cos[-1] > 0
  # AST: halved after epoch 25 of 50; its code: x0.6 after 27
  ast = [train.epoch_lr("step", 1.0, e, 50, (25,), 0.5) for e in (25, 26, 50)]
  assert ast == [1.0, 0.5, 0.5]
  assert train.epoch_lr("step", 1.0, 28, 50, (10, 27), 0.6) == pytest.approx(0.36)


def test_a_step_with_a_fresh_optimiser_zeroes_the_momentum_at_the_step(idx_dir, tmp_path):
  """lr_step_reset (AST's code re-creates its SGD): the trajectory before the step is
  the same, the epoch after it moves otherwise than with momentum kept."""
  def trajectory(reset, work):
    config = _config(idx_dir, momentum=0.9, lr_schedule="step", lr_step_after=(1,),
                     lr_step_factor=0.5, lr_step_reset=reset, num_experts=1)
    train.train_experts(config, str(work))
    return _all_params(os.path.join(str(work), "experts"), config)
  kept, fresh = trajectory(False, tmp_path / "kept"), trajectory(True, tmp_path / "fresh")
  same = lambda a, b: all(np.array_equal(x, y) for x, y in
                          zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert same(kept[(0, 1)], fresh[(0, 1)])
  assert not same(kept[(0, 2)], fresh[(0, 2)])
  with pytest.raises(ConfigError, match=r"expert.lr_step_after: \[3\] outside"):
    train.validate(_config(idx_dir, lr_schedule="step", lr_step_after=(3,)))


def test_interrupted_run_resumes_to_the_same_trajectories(idx_dir, tmp_path, monkeypatch):
  # momentum: optimiser state must be restored; step schedule: lr must follow the epoch
  config = _config(idx_dir, momentum=0.9, lr_schedule="step")
  whole = train.train_experts(config, str(tmp_path / "whole"))

  original = store.TrajectoryWriter.save
  calls = {"n": 0}

  def dying_save(self, epoch, state, metrics=None):
    calls["n"] += 1
    if calls["n"] == 7:   # expert 1, before its epoch 2 is written
      self._manager.wait_until_finished()
      raise KeyboardInterrupt("killed")
    return original(self, epoch, state, metrics)

  monkeypatch.setattr(store.TrajectoryWriter, "save", dying_save)
  with pytest.raises(KeyboardInterrupt):
    train.train_experts(config, str(tmp_path / "resumed"))
  monkeypatch.setattr(store.TrajectoryWriter, "save", original)
  partial = os.path.join(str(tmp_path / "resumed"), "experts")
  assert store.ExpertReader(partial).experts == [0]
  resumed = train.train_experts(config, str(tmp_path / "resumed"))

  a, b = _all_params(whole, config), _all_params(resumed, config)
  assert a.keys() == b.keys() and len(a) == 8
  for key in a:
    jax.tree.map(np.testing.assert_array_equal, a[key], b[key])
  metrics = store.ExpertReader(resumed).metadata(1)["metrics"]
  assert [m["epoch"] for m in metrics] == [0, 1, 2, 3]


def test_expert_seed_lets_runs_of_other_seeds_share_one_set_of_experts(idx_dir, tmp_path):
  """expert.seed pins the experts (and PAD's ranking): runs of seeds 1 and 2 read the
  folder trained at seed 0, which holds the very experts a seed-0 run trains; without
  it, the run's seed is the experts' and another seed is refused."""
  config = _config(idx_dir, epochs=1)
  whole = train.train_experts(config, str(tmp_path / "seed0"))
  prepared = pipeline.prepare(config.data)
  for seed in (1, 2):
    other = _config(idx_dir, epochs=1, seed=0)
    with other.unlocked():
      other.seed = seed
    assert train.expert_spec(other, prepared) == train.expert_spec(config, prepared)
    assert train.train_experts(other, str(tmp_path / "seed0")) == whole   # reused
  pinned = _config(idx_dir, epochs=1, seed=0)
  with pinned.unlocked():
    pinned.seed = 5
  fresh = train.train_experts(pinned, str(tmp_path / "pinned"))
  a, b = _all_params(whole, config), _all_params(fresh, config)
  for key in ((0, 0), (1, 1)):
    jax.tree.map(np.testing.assert_array_equal, a[key], b[key])
  unpinned = _config(idx_dir, epochs=1)
  with unpinned.unlocked():
    unpinned.seed = 1
  with pytest.raises(ConfigError, match=r"seed \(stored 0, config 1\)"):
    train.train_experts(unpinned, str(tmp_path / "seed0"))
  with pytest.raises(ConfigError, match="expert.seed"):
    train.validate(_config(idx_dir, seed=-2))


def test_folder_of_another_architecture_is_refused_before_training(idx_dir, tmp_path):
  train.train_experts(_config(idx_dir), str(tmp_path))
  config = _config(idx_dir)
  with config.unlocked():
    config.model.width = 16
  with pytest.raises(ConfigError, match=r"expert.dir: .* model.width \(stored 8, config 16\)"):
    train.train_experts(config, str(tmp_path))
  with config.unlocked():
    config.model.width = 8
    config.data.zca = True
  with pytest.raises(ConfigError, match=r"data.preprocessing.zca"):
    store.ExpertReader(os.path.join(str(tmp_path), "experts"),
                       expected_spec=train.expert_spec(config, pipeline.prepare(config.data)))


def test_experts_of_the_old_28px_convnet_are_refused(idx_dir, tmp_path):
  """A folder trained with dd_jax's old one-channel stem (padding 1) is not read as the
  official 32 px net's: one line names the field."""
  old = _config(idx_dir)
  with old.unlocked():
    old.model.one_channel_padding = 1
  train.train_experts(old, str(tmp_path))
  with pytest.raises(ConfigError, match=r"model.one_channel_padding \(stored 1, config 3\)"):
    train.train_experts(_config(idx_dir), str(tmp_path))


def test_non_empty_foreign_folder_and_bad_fields_are_refused(idx_dir, tmp_path):
  (tmp_path / "experts").mkdir()
  (tmp_path / "experts" / "notes.txt").write_text("mine")
  with pytest.raises(ConfigError, match="expert.dir: .* is not empty"):
    train.train_experts(_config(idx_dir), str(tmp_path))
  with pytest.raises(ConfigError, match="expert.lr: is -1"):
    train.train_experts(_config(idx_dir, lr=-1.0), str(tmp_path / "x"))
  assert not (tmp_path / "x").exists()   # nothing written for a refused config


def test_pad_scheduler_trains_on_the_scheduled_subsets_and_pins_the_ranking(idx_dir,
                                                                             tmp_path):
  config = _config(idx_dir, epochs=4, num_experts=1, data_schedule="pad", sam="gsam")
  with config.unlocked():
    config.expert.schedule.update(initial_ratio=0.5, addition_end=2, removal_epochs=(2,),
                                  removal_fractions=(0.25,))
  directory = train.train_experts(config, str(tmp_path))
  assert os.path.exists(tmp_path / "scores" / "el2n.npz")   # computed first, when missing
  reader = store.ExpertReader(directory, train.stored_spec(config, str(tmp_path),
                                                           pipeline.prepare(config.data)))
  sizes = [m["train_size"] for m in reader.metadata(0)["metrics"][1:]]
  # 20 per class; 0-based epochs 0, 1, 2, 3: half, 3/4, all, all but the easiest quarter.
  assert sizes == [100, 150, 200, 150]
  assert reader.spec["data_schedule"]["initial_ratio"] == 0.5
  assert len(reader.spec["data_schedule"]["ranking"]) == 16
  assert reader.spec["sam"] == {"name": "gsam", "rho": 0.01, "alpha": 0.3, "adaptive": True}
  reader.close()
  plain = _config(idx_dir, epochs=4, num_experts=1)
  with pytest.raises(ConfigError, match=r"expert\.dir: .*different setup: data_schedule"):
    train.train_experts(plain, str(tmp_path))


def test_a_schedule_that_removes_before_addition_ends_is_one_clear_error(idx_dir, tmp_path):
  config = _config(idx_dir, data_schedule="pad")
  with config.unlocked():
    config.expert.schedule.update(addition_end=30, removal_epochs=(20,), removal_fractions=(0.1,))
  with pytest.raises(ConfigError, match=r"^expert\.schedule\.removal_epochs: the first "
                                        r"removal \(after epoch 20\) comes before addition"):
    train.train_experts(config, str(tmp_path))
  assert not (tmp_path / "experts").exists() and not (tmp_path / "scores").exists()


def test_smooth_experts_record_avg_var_and_the_report_prints_it(idx_dir, tmp_path, capsys):
  from dd_jax.experts import report
  plain = train.train_experts(_config(idx_dir, dir=str(tmp_path / "plain")), str(tmp_path))
  smooth_config = _config(idx_dir, dir=str(tmp_path / "smooth"), momentum=0.9,
                          weight_decay=1e-3, clip_epochs=2, gp_weight=1.0)
  smooth = train.train_experts(smooth_config, str(tmp_path))
  spec = store.read_json(os.path.join(smooth, store.SPEC_FILE))
  assert spec["clipped_ce"] == {"epochs": 2, "start": 0.5}
  assert spec["gradient_penalty"] == {"weight": 1.0, "target": 1.0, "norm": "sample"}
  assert "clipped_ce" not in store.read_json(os.path.join(plain, store.SPEC_FILE))
  # Avg_Var = mean over epochs of |theta_e - theta_{e-1}|^2, from the checkpoints.
  params = _all_params(smooth, smooth_config)
  for e in (0, 1):
    want = np.mean([sum(float(jnp.sum((a - b) ** 2)) for a, b in zip(
        jax.tree.leaves(params[(e, t)]), jax.tree.leaves(params[(e, t - 1)])))
        for t in (1, 2, 3)])
    meta = store.ExpertReader(smooth).metadata(e)
    assert meta["avg_var"] == pytest.approx(want, rel=1e-4)
  assert report.main([plain, smooth]) == 0
  table = capsys.readouterr().out.splitlines()
  assert table[0].startswith("| experts | optimiser") and len(table) == 4
  assert "sgd m=0.9 wd=0.001 + clipped_ce + gradient_penalty" in table[3]
  with pytest.raises(SystemExit):
    report.main([str(tmp_path / "nowhere")])
  assert "is not a folder" in capsys.readouterr().err


def test_bad_smoothing_fields_are_clear_errors(idx_dir, tmp_path):
  for fields, match in (({"gp_weight": 1.0, "gp_target": 0.0}, r"^expert\.gp_target: is 0"),
                        ({"gp_weight": 1.0, "gp_norm": "pixel"}, r"^expert\.gp_norm"),
                        ({"clip_epochs": 3, "clip_start": 0.0}, r"^expert\.clip_start")):
    with pytest.raises(ConfigError, match=match):
      train.train_experts(_config(idx_dir, **fields), str(tmp_path))
  assert not os.path.exists(tmp_path / "experts")
