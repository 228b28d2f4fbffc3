"""The run report's plots (matplotlib, drawn off screen, returned as PNG bytes):
metric curves over outer steps, the evaluation accuracy, the synthetic images a row per
class (dd_jax/report.py lays them out in the page)."""
from __future__ import annotations

import io

import numpy as np

MAX_CLASS_ROWS = 20     # image rows shown (CIFAR-100: the first 20 classes)
MAX_PER_ROW = 10


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


def curve_png(series, title: str, log: bool = False) -> bytes:
  """A metric (`report.Series`) over outer steps; log-scaled when it spans a decade."""
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
