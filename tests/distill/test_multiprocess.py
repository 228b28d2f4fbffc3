"""A run split over two processes (jax.distributed over loopback, launch/local.sh),
resumed there from a one-process checkpoint, against the same run in one process."""
import os
import subprocess

import numpy as np
import pytest

from dd_jax.distill import run
from tests.conftest import FAST_COMPILE, ROOT
from tests.distill.conftest import _config, _synset


def _flags(data_dir, experts):
  """`_config(data_dir, experts)` as command-line flags."""
  return [f"--config={ROOT}/configs/fashion_mnist_mtt.py:runlocal",
          "--config.data.source=idx", f"--config.data.data_dir={data_dir}",
          "--config.data.train_per_class=0", "--config.model.width=8",
          "--config.expert.batch_size=32", f"--config.expert.dir={experts}",
          "--config.distill.syn_steps=3", "--config.distill.iterations=4",
          "--config.distill.eval_every=0", "--config.distill.checkpoint_every=2"]


def _launch(n, work, flags):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env["XLA_FLAGS"] = FAST_COMPILE   # one CPU device per process
  return subprocess.run(["bash", os.path.join(ROOT, "launch", "local.sh"), str(n),
                         "python", "-m", "dd_jax.main", *flags, f"--workdir={work}"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_two_processes_equal_one(shared, tmp_path):
  one = str(tmp_path / "one")
  initial = np.asarray(run.Distiller(_config(*shared), one).initial_state().images)
  run.Distiller(_config(*shared), one).run()
  want = _synset(one)

  # The first 2 steps in one process, the last 2 resumed from its checkpoint in two.
  two = tmp_path / "two"
  run.Distiller(_config(*shared, iterations=2), str(two)).run()
  out = _launch(2, two, _flags(*shared))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "[process 1] " in out.stderr and "process 1 of 2" in out.stderr
  resumed = [line for line in out.stderr.splitlines()
             if "resuming distillation from step 2" in line]
  assert sorted(line.split("]")[0] for line in resumed) == ["[process 0", "[process 1"]
  assert "mesh experts=1 x data=2" in out.stderr       # the batch split over processes
  got = _synset(str(two))
  update, ref = got["images"] - initial, want["images"] - initial
  assert np.max(np.abs(update - ref)) < 1e-5 * np.max(np.abs(ref))
  assert float(got["lr"]) == pytest.approx(float(want["lr"]), rel=1e-5)
  # Process 0 wrote the run's files; the checkpoints are the latest step's.
  assert sorted(os.listdir(two / "distill" / "ckpt")) == ["2", "4"]


def test_a_multiprocess_run_without_experts_is_refused_in_one_line(shared, tmp_path):
  flags = _flags(shared[0], str(tmp_path / "none"))
  out = _launch(2, tmp_path / "w", flags)
  assert out.returncode != 0
  assert "error: expert.dir:" in out.stderr and "python -m dd_jax.experts" in out.stderr
  assert "Traceback" not in out.stderr
