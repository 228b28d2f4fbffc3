"""A run killed with SIGKILL anywhere resumes from its last complete checkpoint and ends
with the synthetic set an uninterrupted run makes (dd_jax/faults.py names the points)."""
import glob
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np

from dd_jax import faults
from tests.conftest import ROOT

CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_mtt.py")

# The chain of kills: each process dies at its point, the next resumes what it left.
# With runlocal (2 experts x 2 epochs; 4 outer steps, a checkpoint and an evaluation
# every 2) the chain walks through the whole run.
CHAIN = [
    "expert.epoch:1",        # expert 0, epoch 1 computed, nothing saved
    "expert.checkpoint:1",   # expert 0, epoch 1 being written
    "expert.finish:1",       # expert 0 written, its metadata not yet complete
    "expert.checkpoint:1",   # expert 0 completed (nothing to redo), expert 1's epoch 1 written
    "distill.start:1",       # synthetic set made, no checkpoint
    "distill.evaluate:1",    # the step-0 evaluation under way
    "distill.step:2",        # step 1 computing
    "distill.checkpoint:1",  # step 2's checkpoint being written
    "distill.export:1",      # the set's .npz written, .json and .png not yet
    "distill.step:1",        # step 2 computing, resumed from the step-2 checkpoint
    "distill.checkpoint:1",  # the final checkpoint being written
    "distill.report:1",      # the report being written
]


def _flags(idx_dir, work):
  return [f"--config={CONFIG}:runlocal", f"--workdir={work}",
          f"--config.data.data_dir={idx_dir}", "--config.data.source=idx",
          "--config.data.train_per_class=0", "--config.model.width=8",
          "--config.distill.memory_limit_mb=-1"]


def _start(idx_dir, work, fault=None):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop(faults.ENV, None)
  if fault:
    env[faults.ENV] = fault
  return subprocess.Popen([sys.executable, "-m", "dd_jax.main", *_flags(idx_dir, work)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _committed(folder):
  """Steps of an Orbax checkpoint folder that finished writing."""
  if not os.path.isdir(folder):
    return []
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


def _progress(work):
  """({expert folder: (latest committed epoch, complete)}, latest distill checkpoint)."""
  experts = {}
  for path in sorted(glob.glob(os.path.join(work, "experts", "expert_*"))):
    steps = _committed(os.path.join(path, "ckpt"))
    meta = os.path.join(path, "metadata.json")
    complete = os.path.exists(meta) and json.load(open(meta)).get("complete", False)
    experts[os.path.basename(path)] = (steps[-1] if steps else None, complete)
  distill = _committed(os.path.join(work, "distill", "ckpt"))
  return experts, (distill[-1] if distill else None)


def _synset(work):
  with np.load(os.path.join(work, "synset.npz")) as f:
    return {k: f[k] for k in ("images", "labels", "lr")}


def _check_resumed(log, before):
  """The restarted process picked up exactly what the killed one had committed: never
  an earlier point, never from scratch."""
  experts, step = before
  if step is not None:
    assert f"resuming distillation from step {step}" in log, (step, log[-3000:])
  else:
    assert "resuming distillation" not in log
  for name, (epoch, complete) in experts.items():
    index = int(name.split("_")[1])
    if complete:
      assert f"expert {index + 1}/" not in log, name     # not trained again
    elif epoch is not None:
      assert f"expert {index}: resuming after epoch {epoch}" in log, (name, epoch)


def test_a_run_killed_at_every_point_ends_with_the_uninterrupted_runs_set(idx_dir, tmp_path):
  reference = str(tmp_path / "reference")
  r = _start(idx_dir, reference)
  out, err = r.communicate(timeout=600)
  assert r.returncode == 0, err[-3000:]
  expected = _synset(reference)

  work = str(tmp_path / "killed")
  kills = []
  for fault in CHAIN:
    before = _progress(work)
    p = _start(idx_dir, work, fault)
    out, err = p.communicate(timeout=600)
    assert p.returncode == -signal.SIGKILL, (fault, p.returncode, err[-3000:])
    _check_resumed(err, before)
    kills.append(fault)

  before = _progress(work)
  p = _start(idx_dir, work)
  out, err = p.communicate(timeout=600)
  assert p.returncode == 0, err[-3000:]
  _check_resumed(err, before)
  assert len(kills) >= 10
  got = _synset(work)
  for key in expected:
    np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
  assert os.path.exists(os.path.join(work, "report", "index.html"))
  assert not glob.glob(os.path.join(work, "report.*"))     # no leftovers of killed writers
  assert not re.search(r"Traceback", err)


def test_every_fault_point_is_in_the_chain_or_documented():
  assert {f.split(":")[0] for f in CHAIN} == set(faults.POINTS)
  for name in faults.POINTS:
    assert re.search(rf'faults\.point\("{re.escape(name)}"\)', _sources()), name


def _sources():
  text = []
  for path in glob.glob(os.path.join(ROOT, "dd_jax", "**", "*.py"), recursive=True):
    with open(path) as f:
      text.append(f.read())
  return "\n".join(text)
