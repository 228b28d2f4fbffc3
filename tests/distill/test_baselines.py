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
  assert sum("baseline" in c for c in calls) == 2      # the initial set, the random subset
  with open(tmp_path / "a" / "distill" / "baselines.json") as f:
    found = json.load(f)
  assert found["arch"] == "ConvNet" and 0 <= found["initial"]["mean"] <= 1
  assert found["random_real"]["nets"] == config.eval.num_nets
  assert "baseline: a random real subset" in report.render(report.RunFiles.read(
      str(tmp_path / "a")))[0]
  # another run of the setting: the random subset's figure comes from the cache
  calls.clear()
  run.Distiller(_config(*shared, eval_every=4, lr_img=50.0), str(tmp_path / "b")).run()
  assert [c for c in calls if "baseline" in c] == ["baseline (the initial set) "]
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
