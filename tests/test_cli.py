"""Entry points end to end as a user runs them, and their one-line errors."""
import json
import os
import subprocess
import sys

from tests.conftest import ROOT

CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_mtt.py")


def _run(module, *flags):
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-m", module, *flags], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def test_experts_then_evaluate_from_the_command_line(idx_dir, tmp_path):
  data = [f"--config.data.data_dir={idx_dir}", "--config.data.source=idx",
          "--config.data.train_per_class=0", "--config.model.width=8"]
  work = str(tmp_path / "run")
  r = _run("dd_jax.experts", f"--config={CONFIG}:runlocal", f"--workdir={work}", *data)
  assert r.returncode == 0, r.stderr[-2000:]
  assert os.path.exists(os.path.join(work, "experts", "expert_001", "metadata.json"))
  assert "expert 2/2 epoch 2/2" in r.stderr and "ETA" in r.stderr
  r = _run("dd_jax.evaluate", f"--config={CONFIG}:runlocal,ipc=3", f"--workdir={work}", *data)
  assert r.returncode == 0, r.stderr[-2000:]
  with open(os.path.join(work, "eval_results.json")) as f:
    results = json.load(f)
  assert results["images"] == 30 and len(results["results"]["ConvNet"]["accuracies"]) == 2


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
  work = str(tmp_path / "never")
  cases = [
      ("dd_jax.experts", "--config.data.name=fashionmnist", "error: data.name: unknown dataset"),
      ("dd_jax.experts", "--config.model.arch=ResNet50", "error: model.arch: unknown architecture"),
      ("dd_jax.experts", f"--config.data.data_dir={tmp_path}/missing", "error: data.data_dir:"),
      ("dd_jax.evaluate", "--config.eval.ipc=100000", "error: eval.ipc:"),
      # a field the command does not read would be silently ignored
      ("dd_jax.experts", "--config.distill.lr_img=3", "error: --config.distill.lr_img: "
       "python -m dd_jax.experts does not read the distill section"),
      ("dd_jax.evaluate", "--config.distill.iterations=3", "error: --config.distill"
       ".iterations: python -m dd_jax.evaluate does not read the distill section"),
      ("dd_jax.main", "--config.idc.factor=3", "error: --config.idc.factor: python -m "
       "dd_jax.main does not read the idc section"),
  ]
  for module, flag, expected in cases:
    r = _run(module, f"--config={CONFIG}:runlocal", f"--workdir={work}",
             "--config.data.source=idx" if "data_dir" in flag else "--config.seed=0", flag)
    assert r.returncode == 2, (flag, r.stderr[-1500:])
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(expected) and "Fix:" in last, (flag, last)
    assert "Traceback" not in r.stderr, flag
    assert not os.path.exists(work), flag


def test_distill_runs_then_refuses_a_changed_config_in_the_same_workdir(idx_dir, tmp_path):
  data = [f"--config.data.data_dir={idx_dir}", "--config.data.source=idx",
          "--config.data.train_per_class=0", "--config.model.width=8",
          "--config.distill.iterations=2", "--config.distill.eval_every=0",
          "--config.distill.syn_steps=2"]
  work = str(tmp_path / "run")
  r = _run("dd_jax.main", f"--config={CONFIG}:runlocal", f"--workdir={work}", *data)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "distilled 2 steps" in r.stdout and "step 2/2" in r.stderr and "ETA" in r.stderr
  for name in ("synset.npz", "synset.json", "synset.png", "report/index.html",
               "report/loss.png", "report/synset.png"):
    assert os.path.exists(os.path.join(work, name))
  assert f"report: {work}/report/index.html" in r.stdout
  # the same command again: the finished run's summary, nothing run or written again
  stamp = os.path.getmtime(os.path.join(work, "synset.npz"))
  r = _run("dd_jax.main", f"--config={CONFIG}:runlocal", f"--workdir={work}", *data)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "finished: nothing to do" in r.stdout and "distilled 2 steps" in r.stdout
  assert "resuming" not in r.stderr and "step 2/2" not in r.stderr
  assert os.path.getmtime(os.path.join(work, "synset.npz")) == stamp
  r = _run("dd_jax.main", f"--config={CONFIG}:runlocal", f"--workdir={work}", *data,
           "--config.distill.lr_img=3")
  assert r.returncode == 2
  assert r.stderr.strip().splitlines()[-1].startswith(
      "error: --workdir: ") and "distill.lr_img" in r.stderr


def test_the_compilation_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
  import jax  # pylint: disable=g-import-not-at-top
  from dd_jax import cli  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
  assert cli.use_compilation_cache() == str(tmp_path / "jax")   # JAX's own wins
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
  monkeypatch.setenv(cli.XLA_CACHE_ENV, "off")
  assert cli.use_compilation_cache() is None
  before = jax.config.jax_compilation_cache_dir
  monkeypatch.setenv(cli.XLA_CACHE_ENV, str(tmp_path / "mine"))
  try:
    assert cli.use_compilation_cache() == str(tmp_path / "mine")
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
  finally:
    jax.config.update("jax_compilation_cache_dir", before)
  monkeypatch.delenv(cli.XLA_CACHE_ENV)
  home = os.path.expanduser(cli.XLA_CACHE_DEFAULT)
  try:
    assert cli.use_compilation_cache() == home and home.startswith(os.path.expanduser("~"))
  finally:
    jax.config.update("jax_compilation_cache_dir", before)


def test_help_exits_zero_with_the_flags_and_the_config_files_variants():
  r = _run("dd_jax.main", "--help")
  assert r.returncode == 0, r.stderr[-1500:]
  assert "--workdir" in r.stdout and "docs/config.md" in r.stdout
  assert "configs/fashion_mnist_mtt.py" in r.stdout and "configs/common.py" not in r.stdout
  assert "configs/defaults.py" not in r.stdout and "configs/variants.py" not in r.stdout
  r = _run("dd_jax.main", f"--config={CONFIG}:ipc=1", "--help")
  assert r.returncode == 0, r.stderr[-1500:]
  assert "Variants: ipc=1|10|50, runlocal" in r.stdout     # the file's own docstring
  r = _run("dd_jax.report", "-h")
  assert r.returncode == 0 and "--workdir" in r.stdout and "--config" not in r.stdout
