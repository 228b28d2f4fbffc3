"""The plan block before any compute (dd_jax.distill.estimate) and the heartbeat lines
while compiled code runs (dd_jax.progress)."""
import json
import logging
import os
import time

import pytest

from dd_jax import progress
from dd_jax.distill import estimate, run
from dd_jax.distill.methods import METHODS
from dd_jax.evaluate import baselines
from tests.distill.conftest import _config


def _lines(caplog):
  return [r.getMessage() for r in caplog.records]


def test_heartbeat_says_what_runs_and_its_eta_only_when_quiet(caplog):
  with caplog.at_level(logging.INFO), progress.Heartbeat(every_s=0.2) as beat:
    progress.doing("expert 1/2 epoch 1/5 (compiling first)", then_s=90)
    time.sleep(0.7)
    progress.doing("step 3/10", expected_s=100, then_s=700)
    time.sleep(0.5)
    progress.doing(None)            # nothing worth a line
    time.sleep(0.5)
    count = len(_lines(caplog))
    progress.doing("step 4/10")
    for _ in range(10):             # the main thread's own lines keep it quiet
      beat.logged()
      time.sleep(0.05)
    assert len(_lines(caplog)) == count
  lines = _lines(caplog)
  assert any(l.startswith("expert 1/2 epoch 1/5 (compiling first): ") and
             l.endswith("so far, then ~1m30s") for l in lines), lines
  assert any(l.startswith("step 3/10: 0s so far of ~1m40s, ETA 13m") for l in lines), lines
  progress.doing("after the heartbeat")   # none active: a no-op
  assert progress.duration(59.6) == "1m00s" and progress.duration(7322) == "2h02m"


def _fake_measure(model, shape, num_classes, batch):
  return 0.001 * batch, 2.0    # 1 ms per image, 2 s of compilation


def test_plan_counts_the_work_left_and_prices_it(shared, tmp_path, monkeypatch):
  config = _config(*shared, eval_every=2, iterations=6, batch_syn=4)
  distiller = run.Distiller(config, str(tmp_path))   # its own plan measures the real rates
  monkeypatch.setenv(estimate.CACHE_ENV, str(tmp_path / "rates"))
  monkeypatch.setenv(baselines.CACHE_ENV, str(tmp_path / "baselines"))
  monkeypatch.setattr(estimate, "busy_load", lambda: None)   # a quiet machine
  method = METHODS[config.distill.method]
  lines, seconds = estimate.plan_lines(config, distiller.ctx, method, _fake_measure)
  d, ev = config.distill, config.eval
  assert lines[0] == f"experts: {config.expert.num_experts} stored, none to train"
  assert lines[1].startswith(f"distillation: 6 outer steps of 6 ({d.syn_steps} inner steps "
                             "of 4 images each")
  evals = 4 * len(ev.models)   # steps 0, 2, 4 and the end
  # ... then a random subset's baseline (the initial set's is step 0's evaluation)
  assert lines[2].startswith(f"evaluations: {evals} x {ev.num_nets} nets x {ev.epochs} "
                             "epochs, then 1 baseline to compare with (~")
  n = distiller.ctx.set_size
  batch = min(ev.batch_size, n)
  per_eval = ev.num_nets * ev.epochs * -(-n // ev.batch_size) * 0.001 * batch
  want = (6 * d.syn_steps * 0.004 * estimate.META_FACTOR + (evals + 1) * per_eval
          + 2.0 * (estimate.COMPILE_FACTOR["distill"] + estimate.COMPILE_FACTOR["eval"]))
  assert seconds == pytest.approx(want)
  # The random subset's figure once cached is not priced again.
  _, path = baselines._cache_entry(config, distiller.ctx.prepared, d.ipc, ev.models[0])
  os.makedirs(os.path.dirname(path))
  with open(path, "w") as f:
    json.dump({"result": {"mean": 0.5, "std": 0.0, "nets": 1}}, f)
  lines, less = estimate.plan_lines(config, distiller.ctx, method, _fake_measure)
  assert "baseline" not in lines[2] and less == pytest.approx(want - per_eval)
  # Measured once per machine and net: the next plan reads the rates back.
  calls = []
  again, _ = estimate.plan_lines(config, distiller.ctx, method,
                                 lambda *args: calls.append(args) or (1.0, 1.0))
  assert again == lines and not calls

  # Experts not yet trained are priced; steps after a checkpoint are not counted again.
  with config.unlocked():
    config.expert.dir = str(tmp_path / "new_experts")
  os.makedirs(tmp_path / "distill" / "ckpt" / "4")
  lines, _ = estimate.plan_lines(config, distiller.ctx, method, _fake_measure)
  assert lines[0].startswith(f"experts: {config.expert.num_experts} to train x "
                             f"{config.expert.epochs} epochs (~")
  assert lines[1].startswith("distillation: 2 outer steps of 6")
  # resumed after step 0 with no evaluation of it kept: the initial set is evaluated at
  # the end, unless the run's baselines.json has it
  assert "then 1 baseline to compare with" in lines[2]
  with open(tmp_path / "distill" / "baselines.json", "w") as f:
    json.dump({"arch": ev.models[0], "initial": {"mean": 0.4}}, f)
  assert "baseline" not in estimate.plan_lines(config, distiller.ctx, method,
                                               _fake_measure)[0][2]


def test_a_busy_machines_rates_price_this_plan_only(shared, tmp_path, monkeypatch):
  config = _config(*shared, iterations=6, batch_syn=4)
  distiller = run.Distiller(config, str(tmp_path))
  monkeypatch.setenv(estimate.CACHE_ENV, str(tmp_path / "rates"))
  monkeypatch.setattr(estimate, "busy_load", lambda: 7.5)
  method = METHODS[config.distill.method]
  lines, _ = estimate.plan_lines(config, distiller.ctx, method, _fake_measure)
  assert "4 ms at 4" in lines[-2]
  assert lines[-1].startswith("this machine is busy (load 7.5 on ")
  assert not os.path.exists(tmp_path / "rates") or not os.listdir(tmp_path / "rates")
  calls = []   # measured again next time: nothing was kept
  estimate.plan_lines(config, distiller.ctx, method,
                      lambda *args: calls.append(args) or (1.0, 1.0))
  assert calls


def test_a_run_prints_its_plan_first_and_tells_the_heartbeat_what_runs(
    shared, tmp_path, monkeypatch, caplog):
  announced = []
  real = progress.Heartbeat.doing
  monkeypatch.setattr(progress.Heartbeat, "doing",
                      lambda self, what, *a: (announced.append(what), real(self, what, *a)))
  config = _config(*shared, eval_every=4)
  with caplog.at_level(logging.INFO):
    run.distill(config, str(tmp_path))
  lines = _lines(caplog)
  plan = next(i for i, l in enumerate(lines) if l.startswith("plan:"))
  assert "distillation: 4 outer steps of 4" in lines[plan]
  assert "estimated wall time ~" in lines[plan]
  assert plan < next(i for i, l in enumerate(lines) if l.startswith("step 1/4"))
  steps = announced[announced.index("evaluating step 0: 2 ConvNet nets x 4 epochs"):]
  assert steps[1:6] == ["step 1/4 (compiling the distillation step first)", "step 2/4",
                        "step 3/4", "step 4/4",
                        "evaluating step 4: 2 ConvNet nets x 4 epochs"]


def test_the_step_rate_is_the_steady_one_not_the_warm_up(monkeypatch):
  clock = iter([0.0, 0.9, 1.0, 1.5, 2.0, 2.1, 3.0, 3.2])   # calls of 0.9, 0.5, 0.1, 0.2 s
  monkeypatch.setattr(estimate.time, "perf_counter", lambda: next(clock))
  calls = []
  # one untimed warm call, then the fastest of three timed ones
  assert estimate.steady_seconds(lambda: calls.append(1), repeats=3) == pytest.approx(0.1)
  assert len(calls) == 4


def test_expert_epochs_are_priced_at_the_loops_rate(shared, tmp_path, monkeypatch):
  config = _config(*shared, iterations=0, eval_every=0)
  distiller = run.Distiller(config, str(tmp_path))
  monkeypatch.setenv(estimate.CACHE_ENV, str(tmp_path / "rates"))
  monkeypatch.setattr(estimate, "busy_load", lambda: None)
  with config.unlocked():
    config.expert.dir = str(tmp_path / "new_experts")
  e = config.expert
  _, seconds = estimate.plan_lines(config, distiller.ctx, METHODS[config.distill.method],
                                   _fake_measure)
  batches = -(-len(distiller.ctx.prepared.x_train) // e.batch_size)
  assert seconds == pytest.approx(
      e.num_experts * e.epochs * batches * 0.001 * e.batch_size * estimate.EPOCH_FACTOR
      + 2.0 * estimate.COMPILE_FACTOR["experts"])
