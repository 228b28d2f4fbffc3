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
import io
import json
import logging as pylogging
import os
import shutil
import time
from typing import Any

import numpy as np

from dd_jax import faults
from dd_jax.data import sources
from dd_jax.errors import ConfigError
from dd_jax.metadata import read_npz

REPORT_DIR = "report"
# The metrics plotted over outer steps (TensorBoard tag -> title), when a run has them.
CURVES = {"distill/loss": "Matching loss", "distill/syn_lr": "Learned student lr",
          "distill/inner_loss_last": "Student CE after the unroll"}
MAX_CLASS_ROWS = 20     # image rows shown (CIFAR-100: the first 20 classes)
MAX_PER_ROW = 10


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
               final, synset, _experts(workdir, config))


def _experts(workdir: str, config: dict) -> list[dict]:
  folder = config.get("expert", {}).get("dir") or os.path.join(workdir, "experts")
  found = []
  for path in sorted(glob.glob(os.path.join(folder, "expert_*", "metadata.json"))):
    meta = _read_json(path)
    if meta and meta.get("metrics"):
      found.append(meta)
  return found


def method_summary(config: dict) -> str:
  """The method switches a config turns on, in words."""
  d = config.get("distill", {})
  parts = [{"mtt": "trajectory matching (MTT)", "dc": "gradient matching (DC)",
            "dm": "distribution matching (DM)",
            "idc": "gradient matching with multi-formation (IDC)"}.get(
                d.get("method"), str(d.get("method")))]
  if d.get("parameterization") in ("glad", "hpd"):
    parts.append({"glad": "GLaD latents", "hpd": "H-PD progressive latents"}[
        d["parameterization"]])
  if d.get("soft_labels"):
    parts.append("DATM soft labels")
  if d.get("param_mask", "none") != "none":
    parts.append(f"PAD parameter mask ({d['param_mask']}, {d.get('param_mask_ratio')})")
  if config.get("expert", {}).get("data_schedule", "none") != "none":
    parts.append("PAD data scheduler for experts")
  if config.get("expert", {}).get("gp_weight", 0):
    parts.append("AST smooth experts")
  if d.get("pix_init") == "kmeans":
    parts.append("AST representative init")
  if d.get("balance_loss"):
    parts.append("AST balanced inner loss")
  if d.get("intermediate", "none") != "none":
    parts.append(f"AST intermediate matching ({d['intermediate']})")
  if d.get("perturb_rho", 0):
    parts.append(f"AST weight perturbation (rho {d['perturb_rho']})")
  subsets = config.get("seqmatch", {}).get("subsets")
  if subsets:
    parts.append(f"SeqMatch subsets {list(subsets)}")
  return " + ".join(parts)


# ----- plots (matplotlib, drawn off screen) -----

def _figure(width=6.0, height=3.2):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(width, height), dpi=100)
  ax.grid(alpha=0.3)
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # outer steps are whole
  return plt, fig, ax


def _png(plt, fig, trim: bool = False) -> bytes:
  """The figure as PNG bytes (closed after): laid out tight, or with its empty border
  trimmed (`trim`, for grids of images)."""
  buf = io.BytesIO()
  if not trim:
    fig.tight_layout()
  fig.savefig(buf, format="png", bbox_inches="tight" if trim else None)
  plt.close(fig)
  return buf.getvalue()


def curve_png(series: Series, title: str, log: bool = False) -> bytes:
  plt, fig, ax = _figure()
  ax.plot(series.steps, series.values, lw=1.2)
  positive = series.values[series.values > 0]
  if log and positive.size == series.values.size and positive.max() > 10 * positive.min():
    ax.set_yscale("log")
  ax.set_title(title)
  ax.set_xlabel("outer step")
  return _png(plt, fig)


def accuracy_png(evals: dict[str, list]) -> bytes | None:
  """Mean accuracy (+- std over the nets) against the step, a line per architecture
  (and per SeqMatch subset / H-PD layer folder)."""
  lines = []
  for folder, records in evals.items():
    archs = sorted({k for r in records for k, v in r.items() if isinstance(v, dict)})
    for arch in archs:
      # A SeqMatch subset's or H-PD layer's steps count on from the earlier ones, as
      # in the loss curves (records before that was written have their own steps).
      rows = sorted((r.get("global_step", r["step"]), r[arch]["mean"], r[arch]["std"])
                    for r in records if arch in r)
      label = arch if len(evals) == 1 else f"{folder} {arch}"
      lines.append((label, np.array(rows)))
  if not lines:
    return None
  plt, fig, ax = _figure()
  for label, rows in lines:
    ax.errorbar(rows[:, 0], 100 * rows[:, 1], yerr=100 * rows[:, 2], marker="o", ms=3,
                capsize=3, label=label)
  ax.set_title("Evaluation accuracy (mean +- std over the nets)")
  ax.set_xlabel("outer step")
  ax.set_ylabel("test accuracy (%)")
  ax.legend(fontsize=8)
  return _png(plt, fig)


def synset_png(pixels: np.ndarray, labels: np.ndarray, class_names) -> bytes:
  """The synthetic images as pixels, a row per class (at most MAX_CLASS_ROWS rows and
  MAX_PER_ROW images a row), each row named; one image per class: a square-ish block of
  titled images."""
  hard = labels if labels.ndim == 1 else labels.argmax(-1)
  classes = sorted(set(hard.tolist()))[:MAX_CLASS_ROWS]
  name = lambda c: class_names[c] if class_names and c < len(class_names) else str(c)  # noqa: E731
  cols = max(1, min(MAX_PER_ROW, max(int(np.sum(hard == c)) for c in classes)))
  if cols == 1:   # one image per class: a square-ish block, each image titled
    cols = int(np.ceil(np.sqrt(len(classes))))
    rows = int(np.ceil(len(classes) / cols))
    cells = [(i // cols, i % cols, c, np.flatnonzero(hard == c)[0], name(c))
             for i, c in enumerate(classes)]
  else:           # a row per class, named on the left
    rows = len(classes)
    cells = [(i, j, c, k, None) for i, c in enumerate(classes)
             for j, k in enumerate(np.flatnonzero(hard == c)[:cols])]
  plt, fig, _ = _figure(width=1.0 + 1.1 * cols, height=1.1 * rows + 0.3)
  fig.clf()
  grey = pixels.shape[-1] == 1
  for row, col, c, k, title in cells:
    ax = fig.add_subplot(rows, cols, row * cols + col + 1)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
      side.set_visible(False)
    img = np.clip(pixels[k], 0, 1)
    ax.imshow(img[..., 0] if grey else img, cmap="gray" if grey else None,
              vmin=0, vmax=1, interpolation="nearest")
    if title is not None:
      ax.set_title(title, fontsize=8)
    elif col == 0:
      ax.set_ylabel(name(c), rotation=0, ha="right", va="center", fontsize=8)
  return _png(plt, fig, trim=True)


# ----- the page -----

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
  images, body = {}, []
  config, data = run.config, run.data
  d = config.get("distill", {})
  dataset = data.get("dataset") or config.get("data", {}).get("name", "?")
  num_classes = data.get("num_classes")
  title = f"{dataset}, IPC {d.get('ipc', '?')}: {method_summary(config)}"
  body.append(f"<h1>{html.escape(title)}</h1>")
  facts = [["workdir", os.path.abspath(run.workdir)],
           ["model", f"{config.get('model', {}).get('arch', '?')} (width "
                     f"{config.get('model', {}).get('width', '?')}, depth "
                     f"{config.get('model', {}).get('depth', '?')})"]]
  if data:
    facts.append(["data", f"{dataset}, {num_classes} classes, images "
                          f"{'x'.join(map(str, data.get('image_shape', [])))}, "
                          f"fingerprint {data.get('fingerprint', '?')}"])
  if run.synset is not None:
    meta = run.synset["meta"]
    facts.append(["synthetic set", f"{len(run.synset['labels'])} images at step "
                                   f"{meta.get('step', '?')}, learned lr "
                                   f"{float(run.synset['lr']):.5g}"])
  body.append(_table(None, facts))

  body.append("<h2>Distillation</h2>")
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
  if plots:
    body.append('<div class="plots">' + "".join(
        f'<img src="{f}" alt="{f}">' for f in plots) + "</div>")
  else:
    body.append('<p class="muted">No metrics logged yet.</p>')

  if run.synset is not None:
    pixels, labels = run.synset.get("pixels"), run.synset["labels"]
    if pixels is not None:
      names = sources.CLASS_NAMES.get(dataset)
      images["synset.png"] = synset_png(pixels, labels, names)
      shown = min(MAX_CLASS_ROWS, num_classes or MAX_CLASS_ROWS)
      hard = labels if labels.ndim == 1 else labels.argmax(-1)
      layout = ("one per class" if np.bincount(hard).max() == 1 else
                f"a row per class, at most {MAX_PER_ROW} each")
      zca = " with the ZCA whitening inverted" if config.get("data", {}).get("zca") else ""
      body.append(f"<h2>Synthetic images</h2><p class='muted'>As pixels{zca}: {layout} "
                  f"(the first {shown} classes).</p>"
                  "<img src='synset.png' alt='synthetic images'>")

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
  if run.final:
    for arch, v in run.final.get("results", {}).items():
      where = "final (dd_jax.evaluate" + (", under way)" if run.final.get("partial") else ")")
      rows.append([where, arch, "", _pct(v["mean"], v["std"]), len(v.get("accuracies", []))])
  if rows:
    body.append("<h2>Accuracy</h2>" + _table(
        ["where", "architecture", "step", "test accuracy (%)", "nets"], rows))

  if run.experts:
    rows = []
    for e in run.experts:
      last = e["metrics"][-1]
      rows.append([e.get("index", "?"), last.get("epoch", "?"),
                   f"{100 * last.get('test_acc', float('nan')):.2f}",
                   _duration(sum(m.get("seconds", 0) for m in e["metrics"]))])
    body.append("<h2>Experts</h2>" + _table(
        ["expert", "epochs", "final test accuracy (%)", "training time"], rows))

  rows = timings(run)
  if rows:
    body.append("<h2>Timings</h2>" + _table(["what", "time"], rows))
  body.append("<h2>Config</h2>" + _config_tables(config))
  body.append(f"<p class='muted'>Made by python -m dd_jax.report on "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}.</p>")
  page = (f"<!doctype html><html><head><meta charset='utf-8'><title>"
          f"{html.escape(title)}</title><style>{STYLE}</style></head><body>"
          + "\n".join(body) + "</body></html>\n")
  return page, images


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
