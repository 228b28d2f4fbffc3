"""The run report: a page made from a workdir's files only."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dd_jax import report, report_plots, summaries
from dd_jax.errors import ConfigError
from dd_jax.metadata import write_json_atomic, write_npz_atomic
from tests.conftest import ROOT

CONFIG = {"seed": 0, "data": {"name": "fashion_mnist", "zca": False},
          "model": {"arch": "ConvNet", "width": 8, "depth": 3},
          "distill": {"method": "mtt", "ipc": 2, "soft_labels": True, "param_mask": "depth",
                      "param_mask_ratio": 0.25, "parameterization": "pixels"},
          "expert": {"dir": ""}}
DATA = {"dataset": "fashion_mnist", "num_classes": 10, "image_shape": [28, 28, 1],
        "fingerprint": "abc"}


def _workdir(root):
  """A workdir as a run leaves it: metrics (one step logged twice, as after a resume),
  two evaluations, the synthetic set, and experts with their metadata."""
  work = root / "w"
  (work / "distill").mkdir(parents=True)
  write_json_atomic(str(work / "distill" / "run.json"), {"config": CONFIG, "data": DATA})
  write_json_atomic(str(work / "distill" / "evals.json"), [
      {"step": 0, "lr": 0.01, "ConvNet": {"mean": 0.5, "std": 0.02,
                                          "accuracies": [0.48, 0.52], "seconds": 3.0}},
      {"step": 4, "lr": 0.011, "ConvNet": {"mean": 0.75, "std": 0.01,
                                           "accuracies": [0.74, 0.76], "seconds": 4.0}}])
  writer = summaries.create_writer(str(work))
  for step, loss in [(1, 0.9), (2, 0.8), (3, 0.7), (3, 0.65), (4, 0.6)]:
    writer.write_scalars(step, {"distill/loss": loss, "distill/syn_lr": 0.01 + step * 1e-4})
  writer.flush()
  rng = np.random.default_rng(0)
  labels = np.eye(10, dtype=np.float32)[np.repeat(np.arange(10), 2)] * 5   # soft logits
  write_npz_atomic(str(work / "synset.npz"), images=rng.normal(size=(20, 28, 28, 1)),
                   pixels=rng.uniform(size=(20, 28, 28, 1)).astype(np.float32),
                   labels=labels, lr=np.float32(0.011),
                   meta=json.dumps({"step": 4, "data": DATA, "config": CONFIG}))
  (work / "experts" / "expert_000").mkdir(parents=True)
  write_json_atomic(str(work / "experts" / "expert_000" / "metadata.json"), {
      "index": 0, "metrics": [{"epoch": 0, "test_acc": 0.1},
                              {"epoch": 1, "test_acc": 0.8, "seconds": 30.0}]})
  return work


def test_the_report_shows_what_the_run_wrote(tmp_path):
  work = _workdir(tmp_path)
  series = report.read_scalars(str(work))["distill/loss"]
  assert series.steps.tolist() == [1, 2, 3, 4]
  assert series.values[2] == pytest.approx(0.65)       # the step logged last counts
  page_path = report.write_report(str(work))
  assert page_path == str(work / "report" / "index.html")
  files = sorted(os.listdir(work / "report"))
  assert files == ["accuracy.png", "index.html", "loss.png", "syn_lr.png", "synset.png"]
  for name in files[:-1] + ["synset.png"]:
    if name.endswith(".png"):
      with Image.open(work / "report" / name) as img:
        assert img.size[0] > 200 and img.size[1] > 100
  with open(page_path, encoding="utf-8") as f:
    page = f.read()
  assert ("fashion_mnist, IPC 2: trajectory matching (MTT) + DATM soft labels + PAD "
          "parameter mask (depth, 0.25)") in page
  assert "75.00 ± 1.00" in page and "50.00 ± 2.00" not in page   # the last evaluation
  assert "a row per class" in page and "80.00" in page           # expert accuracy
  assert "evaluations during distillation (2)" in page and "7.0 s" in page
  assert "<summary>distill</summary>" in page and "param_mask_ratio" in page
  # Written again: the folder is replaced whole, nothing temporary left beside it.
  report.write_report(str(work))
  names = os.listdir(work)
  assert "report" in names and not [n for n in names if ".tmp." in n or ".old." in n]


def test_one_image_per_class_is_drawn_as_a_block_not_a_column():
  block = report_plots.synset_png(np.zeros((10, 28, 28, 1)), np.arange(10), None)
  rows = report_plots.synset_png(np.zeros((20, 28, 28, 1)), np.repeat(np.arange(10), 2), None)
  with Image.open(io.BytesIO(block)) as a, Image.open(io.BytesIO(rows)) as b:
    assert 0.5 < a.size[0] / a.size[1] < 2       # 4 x 3 images
    assert b.size[1] > 2 * b.size[0]             # 10 rows of 2


def test_an_evaluation_under_way_is_reported_with_what_it_finished(tmp_path):
  work = _workdir(tmp_path)
  write_json_atomic(str(work / "eval_progress.json"), {"key": "k", "results": {
      "AlexNet": {"mean": 0.6, "std": 0.03, "accuracies": [0.6] * 5, "seconds": 90.0}}})
  with open(report.write_report(str(work)), encoding="utf-8") as f:
    page = f.read()
  assert "final (dd_jax.evaluate, under way)" in page and "60.00 ± 3.00" in page


def test_a_folder_without_a_run_is_one_clear_error(tmp_path):
  with pytest.raises(ConfigError) as e:
    report.write_report(str(tmp_path))
  assert e.value.field == "--workdir" and "no distillation run" in str(e.value)
  assert not os.path.exists(tmp_path / "report")
  out = subprocess.run([sys.executable, "-m", "dd_jax.report", f"--workdir={tmp_path}"],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith("error: --workdir: ")


def test_the_report_commands_flag_errors_are_one_line():
  for argv, expected in ((["--workdir=/tmp", "--wrokdir=/tmp"], "error: --wrokdir: no such flag"),
                         ([], "error: --workdir: not given. Fix: give --workdir=")):
    out = subprocess.run([sys.executable, "-m", "dd_jax.report", *argv], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-1500:]
    assert out.stderr.strip().splitlines()[-1].startswith(expected), out.stderr[-500:]
