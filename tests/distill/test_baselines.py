"""Baselines beside a run's final accuracy: the initial set's and a random real subset's
(computed once per setting, cached), in the summary and the report."""
import json
import os

from dd_jax import report
from dd_jax.data import pipeline
from dd_jax.distill import run
from dd_jax.evaluate import baselines, protocol
from tests.distill.conftest import _config


def _counting(monkeypatch):
  calls = []
  real = protocol.evaluate_architecture

  def counted(*args, **kwargs):
    calls.append(kwargs.get("log_prefix", ""))
    return real(*args, **kwargs)

  monkeypatch.setattr(protocol, "evaluate_architecture", counted)
  return calls


def test_the_summary_and_report_put_the_baselines_beside_the_final_figure(
    shared, tmp_path, monkeypatch):
  monkeypatch.setenv(baselines.CACHE_ENV, str(tmp_path / "cache"))
  calls = _counting(monkeypatch)
  config = _config(*shared, eval_every=4)
  summary = run.Distiller(config, str(tmp_path / "a")).run()
  assert "baselines (ConvNet): initial set " in summary and "random real subset" in summary
  # the random subset is evaluated; the initial set's figure is the run's step 0
  assert [c for c in calls if "baseline" in c] == ["baseline (1 random real images per "
                                                   "class) "]
  with open(tmp_path / "a" / "distill" / "baselines.json") as f:
    found = json.load(f)
  with open(tmp_path / "a" / "distill" / "evals.json") as f:
    step0 = next(e for e in json.load(f) if e["step"] == 0)["ConvNet"]
  assert found["arch"] == "ConvNet" and found["initial"] == {
      "mean": step0["mean"], "std": step0["std"], "nets": config.eval.num_nets}
  assert found["random_real"]["nets"] == config.eval.num_nets
  assert "baseline: a random real subset" in report.render(report.RunFiles.read(
      str(tmp_path / "a")))[0]
  # another run of the setting: the random subset's figure comes from the cache
  calls.clear()
  run.Distiller(_config(*shared, eval_every=4, lr_img=50.0), str(tmp_path / "b")).run()
  assert not any("baseline" in c for c in calls)
  # without an evaluation or with baselines off, none
  calls.clear()
  with config.unlocked():
    config.eval.baselines = False
  assert "baselines" not in run.Distiller(config, str(tmp_path / "c")).run()
  assert not any("baseline" in c for c in calls)


def test_the_random_subset_figure_is_cached_per_setting(shared, tmp_path, monkeypatch):
  monkeypatch.setenv(baselines.CACHE_ENV, str(tmp_path / "cache"))
  calls = _counting(monkeypatch)
  config = _config(*shared)
  prepared = pipeline.prepare(config.data)
  first = baselines.random_subset(config, prepared, 1, "ConvNet")
  assert baselines.random_subset(config, prepared, 1, "ConvNet") == first and len(calls) == 1
  baselines.random_subset(config, prepared, 2, "ConvNet")     # another ipc: evaluated
  assert len(calls) == 2 and len(os.listdir(tmp_path / "cache")) == 2


def test_compare_says_whether_the_set_beats_both_baselines():
  b = {"arch": "ConvNet", "initial": {"mean": 0.5}, "random_real": {"mean": 0.6}}
  line, better = baselines.compare(0.7, b)
  assert better and line == ("baselines (ConvNet): initial set 50.00%, random real "
                             "subset 60.00%")
  assert not baselines.compare(0.55, b)[1] and not baselines.compare(0.6, b)[1]


def test_the_initial_set_is_evaluated_only_without_a_step0_evaluation(
    shared, tmp_path, monkeypatch):
  monkeypatch.setenv(baselines.CACHE_ENV, str(tmp_path / "cache"))
  config = _config(*shared)
  prepared = pipeline.prepare(config.data)
  images, labels = prepared.x_train[:10], prepared.y_train[:10]
  calls = _counting(monkeypatch)
  os.makedirs(tmp_path / "a")
  os.makedirs(tmp_path / "b")
  step0 = {"mean": 0.3, "std": 0.01, "accuracies": [0.29, 0.31], "seconds": 1.0}
  found = baselines.for_run(config, prepared, str(tmp_path / "a"), (images, labels), 0.01,
                            at_step0=step0)
  assert found["initial"] == {"mean": 0.3, "std": 0.01, "nets": 2}
  assert not any("initial" in c for c in calls)
  found = baselines.for_run(config, prepared, str(tmp_path / "b"), (images, labels), 0.01)
  assert "baseline (the initial set) " in calls and found["initial"]["nets"] == \
      config.eval.num_nets
