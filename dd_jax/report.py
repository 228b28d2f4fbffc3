"""Run reports: one HTML page with PNG plots for a workdir, made from its files only.

  python -m dd_jax.report --workdir=/tmp/fm1     (any workdir; dd_jax.main writes one
                                                   at the end of every run)

writes <workdir>/report/index.html beside its plots: the matching loss and the learned
student lr over the outer steps, the evaluation accuracy over steps, the final synthetic
images a row per class (as pixels, ZCA inverted), the final evaluation, the experts,
timings and the config. It reads the TensorBoard event files (the metrics), distill/
(run.json, config.json, evals.json; SeqMatch subsets and H-PD layers in subfolders),
synset.npz, eval_results.json and the experts' metadata; what a workdir lacks is left
out. The folder is replaced whole (a reader never sees half a report).
"""
from __future__ import annotations

import dataclasses
import glob
import html
import json
import logging as pylogging
import os
import shutil
import time
from typing import Any

import numpy as np

from dd_jax import faults
from dd_jax.data import sources
from dd_jax.distill.methods import method_summary
from dd_jax.errors import ConfigError
from dd_jax.metadata import read_npz
from dd_jax.report_plots import (MAX_CLASS_ROWS, MAX_PER_ROW, accuracy_png, curve_png,
                                 synset_png)

REPORT_DIR = "report"
# The metrics plotted over outer steps (TensorBoard tag -> title), when a run has them.
CURVES = {"distill/loss": "Matching loss", "distill/syn_lr": "Learned student lr",
          "distill/inner_loss_last": "Student CE after the unroll"}


@dataclasses.dataclass
class Series:
  """One metric over steps: the last value logged for each step (a resumed run logs
  some steps twice), with the wall time it was logged at."""
  steps: np.ndarray
  values: np.ndarray
  wall: np.ndarray


def read_scalars(workdir: str) -> dict[str, Series]:
  """Every scalar the run wrote to TensorBoard event files in `workdir`."""
  if not glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
    return {}
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  pylogging.getLogger("tensorboard").setLevel(pylogging.WARNING)   # file-by-file chatter
  from tensorboard.backend.event_processing import event_accumulator as ea  # pylint: disable=g-import-not-at-top
  from tensorboard.util import tensor_util  # pylint: disable=g-import-not-at-top
  acc = ea.EventAccumulator(workdir, size_guidance={ea.TENSORS: 0, ea.SCALARS: 0})
  acc.Reload()
  out = {}
  for tag in acc.Tags().get("tensors", []):
    last = {}
    for event in acc.Tensors(tag):
      value = tensor_util.make_ndarray(event.tensor_proto)
      if value.ndim == 0 and np.issubdtype(value.dtype, np.number):
        last[event.step] = (float(value), event.wall_time)
    if last:
      steps = np.array(sorted(last))
      out[tag] = Series(steps, np.array([last[s][0] for s in steps]),
                        np.array([last[s][1] for s in steps]))
  return out


def _read_json(path: str) -> Any:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return None


@dataclasses.dataclass
class RunFiles:
  """What a workdir holds, read once."""
  workdir: str
  config: dict            # distill/config.json, else the identity config of run.json
  data: dict              # the data identity of run.json
  scalars: dict[str, Series]
  evals: dict[str, list]  # evals.json per distillation folder ("distill", "subset_1", ...)
  baselines: dict | None  # distill/baselines.json: the initial set's, a random subset's
  final: dict | None      # eval_results.json
  synset: dict | None     # synset.npz: pixels, labels, lr, meta
  experts: list[dict]     # per expert: its metadata (metrics per epoch)

  @classmethod
  def read(cls, workdir: str) -> "RunFiles":
    distill = os.path.join(workdir, "distill")
    runs = sorted(glob.glob(os.path.join(distill, "run.json")) +
                  glob.glob(os.path.join(distill, "*", "run.json")))
    if not runs and not os.path.exists(os.path.join(workdir, "synset.npz")):
      raise ConfigError("--workdir", f"{workdir} holds no distillation run (no "
                        "distill/run.json, no synset.npz)",
                        "point --workdir at the folder given to python -m dd_jax.main")
    identity = _read_json(runs[0]) if runs else None
    identity = identity or {}
    config = _read_json(os.path.join(distill, "config.json")) or identity.get("config", {})
    evals = {}
    for path in sorted(glob.glob(os.path.join(distill, "evals.json")) +
                       glob.glob(os.path.join(distill, "*", "evals.json"))):
      records = _read_json(path)
      if records:
        evals[os.path.basename(os.path.dirname(path))] = records
    synset = None
    path = os.path.join(workdir, "synset.npz")
    if os.path.exists(path):
      synset = read_npz(path)
      synset["meta"] = json.loads(str(synset.get("meta", "{}")))
      if not identity and "data" in synset["meta"]:
        identity = {"data": synset["meta"]["data"]}
      config = config or synset["meta"].get("config", {})
    final = _read_json(os.path.join(workdir, "eval_results.json"))
    if final is None:   # an evaluation under way: the architectures it has finished
      progress = _read_json(os.path.join(workdir, "eval_progress.json"))
      if progress and progress.get("results"):
        final = {"results": progress["results"], "partial": True}
    return cls(workdir, config, identity.get("data", {}), read_scalars(workdir), evals,
               _read_json(os.path.join(distill, "baselines.json")), final, synset,
               _experts(workdir, config))


def _experts(workdir: str, config: dict) -> list[dict]:
  folder = config.get("expert", {}).get("dir") or os.path.join(workdir, "experts")
  found = []
  for path in sorted(glob.glob(os.path.join(folder, "expert_*", "metadata.json"))):
    meta = _read_json(path)
    if meta and meta.get("metrics"):
      found.append(meta)
  return found


def _table(header: list[str] | None, rows: list[list[Any]]) -> str:
  head = ("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
          if header else "")
  body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                 for row in rows)
  return f"<table>{head}{body}</table>"


def _pct(mean: float, std: float) -> str:
  return f"{100 * mean:.2f} ± {100 * std:.2f}"


def _duration(seconds: float) -> str:
  seconds = float(seconds)
  if seconds < 120:
    return f"{seconds:.1f} s"
  if seconds < 7200:
    return f"{seconds / 60:.1f} min"
  return f"{seconds / 3600:.2f} h"


def timings(run: RunFiles) -> list[list[str]]:
  """[what, how long] rows: the outer steps (from the metrics' wall times), the
  evaluations and the experts (from their records)."""
  rows = []
  loss = run.scalars.get("distill/loss")
  if loss is not None and len(loss.steps) > 1:
    per_step = np.diff(loss.wall) / np.maximum(np.diff(loss.steps), 1)
    per_step = per_step[per_step > 0]
    if per_step.size:
      rows.append(["outer step (median over logged steps)",
                   f"{float(np.median(per_step)):.3f} s"])
    rows.append([f"distillation, steps {int(loss.steps[0])}-{int(loss.steps[-1])} "
                 "(wall clock, evaluations and restarts included)",
                 _duration(loss.wall[-1] - loss.wall[0])])
  evals = [v["seconds"] for records in run.evals.values() for r in records
           for v in r.values() if isinstance(v, dict) and "seconds" in v]
  if evals:
    rows.append([f"evaluations during distillation ({len(evals)})",
                 _duration(sum(evals))])
  if run.final:
    secs = [r.get("seconds") for r in run.final.get("results", {}).values()
            if r.get("seconds")]
    if secs:
      rows.append(["final evaluation (python -m dd_jax.evaluate)", _duration(sum(secs))])
  expert_secs = [m.get("seconds", 0) for e in run.experts for m in e["metrics"]]
  if any(expert_secs):
    rows.append([f"expert training ({len(run.experts)} experts)",
                 _duration(sum(expert_secs))])
  return rows


def _config_tables(config: dict) -> str:
  top = [[k, json.dumps(v)] for k, v in sorted(config.items()) if not isinstance(v, dict)]
  parts = [_table(None, top)] if top else []
  for section in sorted(k for k, v in config.items() if isinstance(v, dict)):
    values = config[section]
    if isinstance(values, dict):
      flat = []
      for key in sorted(values):
        value = values[key]
        if isinstance(value, dict):
          flat += [[f"{key}.{k}", json.dumps(v)] for k, v in sorted(value.items())]
        else:
          flat.append([key, json.dumps(value)])
      parts.append(f"<details><summary>{html.escape(section)}</summary>"
                   f"{_table(['field', 'value'], flat)}</details>")
  return "".join(parts)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; } img { max-width: 100%; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; } .plots img { width: 470px; }
.muted { color: #777; }
"""


def render(run: RunFiles) -> tuple[str, dict[str, bytes]]:
  """The page and its images {file name: PNG bytes}."""
  images = {}
  title, facts = _facts(run)
  body = [f"<h1>{html.escape(title)}</h1>", facts, "<h2>Distillation</h2>",
          _curves(run, images), _synset_section(run, images), _accuracy_section(run),
          _experts_section(run)]
  rows = timings(run)
  if rows:
    body.append("<h2>Timings</h2>" + _table(["what", "time"], rows))
  body.append("<h2>Config</h2>" + _config_tables(run.config))
  body.append(f"<p class='muted'>Made by python -m dd_jax.report on "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}.</p>")
  page = (f"<!doctype html><html><head><meta charset='utf-8'><title>"
          f"{html.escape(title)}</title><style>{STYLE}</style></head><body>"
          + "\n".join(part for part in body if part) + "</body></html>\n")
  return page, images


def _dataset(run: RunFiles) -> str:
  return run.data.get("dataset") or run.config.get("data", {}).get("name", "?")


def _facts(run: RunFiles) -> tuple[str, str]:
  """The page's title and its table of facts (workdir, model, data, the set)."""
  config, data = run.config, run.data
  d, model = config.get("distill", {}), config.get("model", {})
  dataset = _dataset(run)
  title = f"{dataset}, IPC {d.get('ipc', '?')}: {method_summary(config)}"
  facts = [["workdir", os.path.abspath(run.workdir)],
           ["model", f"{model.get('arch', '?')} (width {model.get('width', '?')}, depth "
                     f"{model.get('depth', '?')})"]]
  if data:
    facts.append(["data", f"{dataset}, {data.get('num_classes')} classes, images "
                          f"{'x'.join(map(str, data.get('image_shape', [])))}, "
                          f"fingerprint {data.get('fingerprint', '?')}"])
  if run.synset is not None:
    meta = run.synset["meta"]
    facts.append(["synthetic set", f"{len(run.synset['labels'])} images at step "
                                   f"{meta.get('step', '?')}, learned lr "
                                   f"{float(run.synset['lr']):.5g}"])
  return title, _table(None, facts)


def _curves(run: RunFiles, images: dict) -> str:
  """The metric curves and the accuracy over steps (added to `images`)."""
  plots = []
  for tag, name in CURVES.items():
    if tag in run.scalars and len(run.scalars[tag].steps):
      file = tag.split("/")[-1] + ".png"
      images[file] = curve_png(run.scalars[tag], name, log=tag == "distill/loss")
      plots.append(file)
  accuracy = accuracy_png(run.evals)
  if accuracy:
    images["accuracy.png"] = accuracy
    plots.append("accuracy.png")
  if not plots:
    return '<p class="muted">No metrics logged yet.</p>'
  return '<div class="plots">' + "".join(f'<img src="{f}" alt="{f}">' for f in plots) + "</div>"


def _synset_section(run: RunFiles, images: dict) -> str:
  if run.synset is None or run.synset.get("pixels") is None:
    return ""
  pixels, labels = run.synset["pixels"], run.synset["labels"]
  dataset, num_classes = _dataset(run), run.data.get("num_classes")
  images["synset.png"] = synset_png(pixels, labels, sources.CLASS_NAMES.get(dataset))
  shown = min(MAX_CLASS_ROWS, num_classes or MAX_CLASS_ROWS)
  hard = labels if labels.ndim == 1 else labels.argmax(-1)
  layout = ("one per class" if np.bincount(hard).max() == 1 else
            f"a row per class, at most {MAX_PER_ROW} each")
  zca = " with the ZCA whitening inverted" if run.config.get("data", {}).get("zca") else ""
  return (f"<h2>Synthetic images</h2><p class='muted'>As pixels{zca}: {layout} "
          f"(the first {shown} classes).</p><img src='synset.png' alt='synthetic images'>")


def _accuracy_section(run: RunFiles) -> str:
  rows = []
  for folder, records in run.evals.items():
    last = records[-1]
    for arch, v in last.items():
      if isinstance(v, dict) and "mean" in v:
        rows.append([folder, arch, last["step"], _pct(v["mean"], v["std"]),
                     len(v.get("accuracies", []))])
        if v.get("sequential"):
          rows.append([folder, f"{arch} sequential", last["step"],
                       _pct(v["sequential"]["mean"], v["sequential"]["std"]),
                       len(v["sequential"].get("accuracies", []))])
  for key, what in (("initial", "baseline: the initial set"),
                    ("random_real", "baseline: a random real subset, same ipc")):
    v = (run.baselines or {}).get(key)
    if v:
      rows.append([what, run.baselines.get("arch", ""), "", _pct(v["mean"], v["std"]),
                   v.get("nets", "")])
  if run.final:
    for arch, v in run.final.get("results", {}).items():
      where = "final (dd_jax.evaluate" + (", under way)" if run.final.get("partial") else ")")
      rows.append([where, arch, "", _pct(v["mean"], v["std"]), len(v.get("accuracies", []))])
  if not rows:
    return ""
  return "<h2>Accuracy</h2>" + _table(
      ["where", "architecture", "step", "test accuracy (%)", "nets"], rows)


def _experts_section(run: RunFiles) -> str:
  if not run.experts:
    return ""
  rows = []
  for e in run.experts:
    last = e["metrics"][-1]
    rows.append([e.get("index", "?"), last.get("epoch", "?"),
                 f"{100 * last.get('test_acc', float('nan')):.2f}",
                 _duration(sum(m.get("seconds", 0) for m in e["metrics"]))])
  return "<h2>Experts</h2>" + _table(
      ["expert", "epochs", "final test accuracy (%)", "training time"], rows)


def write_report(workdir: str) -> str:
  """Writes <workdir>/report/ (index.html and its PNGs) whole; returns the page's path."""
  run = RunFiles.read(workdir)
  page, images = render(run)
  final = os.path.join(workdir, REPORT_DIR)
  for leftover in glob.glob(f"{final}.tmp.*") + glob.glob(f"{final}.old.*"):
    shutil.rmtree(leftover, ignore_errors=True)   # from a writer that was killed
  tmp = f"{final}.tmp.{os.getpid()}"
  os.makedirs(tmp)
  for name, data in images.items():
    with open(os.path.join(tmp, name), "wb") as f:
      f.write(data)
  faults.point("distill.report")
  with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
    f.write(page)
  old = f"{final}.old.{os.getpid()}"
  if os.path.exists(final):
    os.replace(final, old)
  os.replace(tmp, final)
  shutil.rmtree(old, ignore_errors=True)
  return os.path.join(final, "index.html")


def main():
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  from dd_jax import cli  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "The run's folder (as given to dd_jax.main).")
  flags.mark_flag_as_required("workdir")

  def run(argv):
    del argv
    with cli.cli_errors():
      print(write_report(flags.FLAGS.workdir))

  app.run(run, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  main()
