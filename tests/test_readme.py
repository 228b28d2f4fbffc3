"""The README's code runs: every Python block is executed (the synthetic-set one on the
set a real tiny run writes), and every command of its shell blocks names a module that
exists and a config file whose variants are accepted."""
import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT

README = os.path.join(ROOT, "README.md")


def blocks(language: str) -> list[str]:
  with open(README) as f:
    text = f.read()
  return [m.group(1) for m in re.finditer(rf"```{language}\n(.*?)```", text, re.S)]


def test_every_python_block_runs(idx_dir, tmp_path):
  code = blocks("python")
  assert len(code) >= 2
  if any("/tmp/fm1/" in c for c in code):   # the set a README run writes: a tiny one
    pytest.importorskip("torch")
    work = str(tmp_path / "fm1")
    r = subprocess.run([sys.executable, "-m", "dd_jax.main",
                        "--config=configs/fashion_mnist_mtt.py:runlocal", f"--workdir={work}",
                        "--config.data.source=idx", f"--config.data.data_dir={idx_dir}",
                        "--config.data.train_per_class=0", "--config.model.width=8"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
  for block in code:
    scope = {}
    exec(compile(block.replace("/tmp/fm1/", str(tmp_path / "fm1") + "/"), README, "exec"),
         scope)
    if "trajectory_matching_loss" in block:   # the dd_jax.losses example: a real gradient
      assert float(scope["loss"]) > 0 and scope["grad_images"].shape == (10, 28, 28, 1)
      assert float(abs(scope["grad_lr"])) > 0
    if "TensorDataset" in block:
      images, labels = scope["dataset"].tensors
      assert images.shape[1:] == (1, 28, 28) and len(labels) == len(images)


def commands() -> list[list[str]]:
  out = []
  for block in blocks("bash"):
    for line in block.replace("\\\n", " ").splitlines():
      line = line.split("#", 1)[0].strip()
      for part in line.split("&&"):
        words = shlex.split(part)
        if words[:2] == ["python", "-m"]:
          out.append(words)
  return out


def test_every_shell_command_names_a_module_and_config_that_exist():
  found = commands()
  assert any(c[2] == "dd_jax.main" for c in found)
  for words in found:
    module = words[2]
    assert importlib.util.find_spec(module) is not None, words
    for w in words[3:]:
      if w.startswith("--config="):
        path, _, variants = w.split("=", 1)[1].partition(":")
        assert os.path.exists(os.path.join(ROOT, path)), words
        name = os.path.splitext(os.path.basename(path))[0]
        importlib.import_module(f"configs.{name}").get_config(variants)   # accepted


def test_the_layout_table_names_every_module_and_only_paths_that_exist():
  with open(README) as f:
    text = f.read()
  layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
  rows = [line for line in layout.splitlines() if line.startswith("| `")]
  for row in rows:   # the first column's paths (a bare name: beside the one before it)
    folder = ""
    for path in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
      full = path if "/" in path.rstrip("/") or path.endswith("/") else folder + path
      folder = os.path.dirname(full.rstrip("/")) + "/" if "/" in full.rstrip("/") else ""
      assert os.path.exists(os.path.join(ROOT, full)), f"README layout names {full}"
  for package in ("dd_jax", "dd_jax/data", "dd_jax/models", "dd_jax/experts",
                  "dd_jax/evaluate", "dd_jax/distill", "dd_jax/distill/methods", "dd_jax/gan"):
    for name in os.listdir(os.path.join(ROOT, package)):
      if name.startswith("__") or not (name.endswith(".py") or
                                       os.path.isdir(os.path.join(ROOT, package, name))):
        continue
      assert re.search(rf"\b{re.escape(name.removesuffix('.py'))}\b", layout), \
          f"README layout does not name {package}/{name}"
