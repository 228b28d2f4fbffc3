"""The memory planner: what a run needs per device, and runs refused before they start."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from dd_jax.memory import MiB
from dd_jax.distill import run
from dd_jax.errors import ConfigError
from tests.conftest import ROOT
from tests.distill.conftest import _config, _synset


def _plan(shared, tmp_path, **distill):
  return run.Distiller(_config(*shared, **distill), str(tmp_path),
                       plan_only=True).memory_plan()


def test_the_plan_adds_the_process_the_cache_and_the_larger_program(shared, tmp_path):
  distiller = run.Distiller(_config(*shared, eval_every=2), str(tmp_path), plan_only=True)
  memory = distiller.memory_plan()
  p = memory.parts
  assert p["process"] > 100 * MiB           # this Python process with JAX loaded
  assert p["step"] > 0 and p["eval"] > 0
  assert memory.total == p["process"] + p["snapshots"] + max(p["step"], p["eval"])
  assert memory.fits and memory.limit > memory.total
  # The cache holds what the start window touches (2 experts x epochs {0, 1}) or less.
  size = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(distiller.abstract))
  assert p["snapshots"] == 4 * size
  assert _plan(shared, tmp_path, snapshot_cache_mb=0).parts["snapshots"] == 0
  assert _plan(shared, tmp_path).parts["eval"] == 0    # eval_every=0: no evaluation
  assert "estimated peak" in memory.summary() and "MiB" in memory.summary()


def test_rematerialisation_and_a_smaller_batch_shrink_the_step(shared, tmp_path):
  full = _plan(shared, tmp_path, remat=False).parts["step"]
  remat = _plan(shared, tmp_path).parts["step"]
  half = _plan(shared, tmp_path, batch_syn=5).parts["step"]
  assert remat < full and half < remat


@pytest.mark.parametrize("remat, field", [(True, "distill.batch_syn"),
                                          (False, "distill.remat")])
def test_a_run_that_cannot_fit_is_refused_before_it_writes(shared, tmp_path, remat, field):
  config = _config(*shared, remat=remat, memory_limit_mb=50)
  with pytest.raises(ConfigError) as e:
    run.Distiller(config, str(tmp_path / "w")).run()
  assert e.value.field == field and "does not fit" in str(e.value)
  assert not os.path.exists(tmp_path / "w" / "distill")   # nothing half-written
  # The same config with the check off runs.
  config = _config(*shared, remat=remat, memory_limit_mb=-1, iterations=1)
  run.Distiller(config, str(tmp_path / "w")).run()
  assert _synset(str(tmp_path / "w"))["images"].shape[0] == 10


def _compiles(fn, name="jit(step)", seconds=1.0, read_seconds=1.5):
  """What `fn()` asked of XLA: (compilations of the program `name` that took `seconds`
  or more, programs read back from the persistent compilation cache that saved
  `read_seconds` or more; the suite caches small ones too, and those do not count).
  The name, not the duration alone, tells the step apart: on a quiet machine it
  compiles in 2.5-3 s, under the 3 s this once counted from."""
  compiled, read = [], []

  def listener(event, duration, **kwargs):
    if (event == "/jax/core/compile/backend_compile_duration" and duration >= seconds
        and kwargs.get("fun_name") == name):
      compiled.append(duration)
    elif (event == "/jax/compilation_cache/compile_time_saved_sec"
          and duration >= read_seconds):
      read.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    fn()
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  return len(compiled), len(read)


@pytest.mark.parametrize("ast", [False, True])
def test_the_run_steps_with_the_program_its_plan_compiled(shared, tmp_path, ast):
  # syn_steps=6: step programs no other test compiles (the suite shares one cache); the
  # step is the run's one program that takes seconds to compile. The plan's program is
  # the run's in memory, not only on disk: with AST's intermediate matching and M=1 the
  # plan once traced other arguments, and the run read the step back from the cache.
  extra = dict(intermediate="equal", expert_epochs=1, balance_loss=True) if ast else {}
  config = _config(*shared, syn_steps=6, iterations=2, memory_limit_mb=0, **extra)
  distiller = run.Distiller(config, str(tmp_path))
  assert _compiles(distiller.run) == (1, 0)


def test_the_plan_command_needs_no_experts(tmp_path, idx_dir):
  experts = tmp_path / "experts"
  out = subprocess.run(
      [sys.executable, "-m", "dd_jax.plan",
       "--config=configs/fashion_mnist_mtt.py:runlocal",
       "--config.data.source=idx", f"--config.data.data_dir={idx_dir}",
       "--config.data.train_per_class=0", f"--config.expert.dir={experts}",
       f"--workdir={tmp_path / 'w'}"], cwd=ROOT, capture_output=True, text=True,
      timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.startswith("fits: estimated peak")
  assert not experts.exists() and not (tmp_path / "w").exists()
  numbers = [float(w) for w in out.stdout.replace(",", " ").split() if w.isdigit()]
  assert np.all(np.asarray(numbers) >= 0) and len(numbers) >= 5
