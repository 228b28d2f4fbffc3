"""python -m dd_jax.experts.report DIR [DIR ...]

Per expert folder: the optimiser, how many complete experts, their final test accuracy
and AST's smoothness Avg_Var = mean over epochs of |theta_e - theta_{e-1}|^2 (mean +- std
over experts), read from the metadata (nothing is recomputed).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from dd_jax import cli
from dd_jax.errors import ConfigError
from dd_jax.experts import store


def summarise(directory: str) -> dict:
  """{"dir", "optimizer", "experts", "test_acc": [...], "avg_var": [...], "missing"}."""
  reader = store.ExpertReader(directory)
  spec = reader.spec
  opt = spec["optimizer"]
  name = opt["name"] + (f" m={opt['momentum']}" if opt.get("momentum") else "")
  name += (f" wd={opt['weight_decay']}" if opt.get("weight_decay") else "")
  extras = [k for k in ("clipped_ce", "gradient_penalty", "sam", "data_schedule")
            if k in spec]
  accs, variances, missing = [], [], 0
  for index in reader.experts:
    meta = reader.metadata(index)
    last = [m for m in meta["metrics"] if "test_acc" in m]
    if last:
      accs.append(last[-1]["test_acc"])
    value = meta.get("avg_var")   # None for experts trained before it was recorded
    if value is None:
      missing += 1
    else:
      variances.append(value)
  reader.close()
  return {"dir": directory, "optimizer": " + ".join([name] + extras),
          "epochs": spec["epochs"], "experts": len(reader.experts), "test_acc": accs,
          "avg_var": variances, "missing": missing}


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 4) -> str:
  if not values:
    return "-"
  v = np.asarray(values) * scale
  return f"{v.mean():.{digits}f} +- {v.std():.{digits}f}"


def format_table(rows: list[dict]) -> str:
  lines = ["| experts | optimiser | epochs | n | test acc (%) | Avg_Var |",
           "|---|---|---|---|---|---|"]
  for r in rows:
    note = f" ({r['missing']} without Avg_Var)" if r["missing"] else ""
    lines.append(f"| {r['dir']} | {r['optimizer']} | {r['epochs']} | {r['experts']} | "
                 f"{_mean_std(r['test_acc'], 100, 2)} | {_mean_std(r['avg_var'])}{note} |")
  return "\n".join(lines)


def main(argv: list[str]) -> int:
  if not argv:
    print(__doc__.strip(), file=sys.stderr)
    return 2
  with cli.cli_errors():
    rows = []
    for directory in argv:
      if not os.path.isdir(directory):
        raise ConfigError("DIR", f"{directory} is not a folder",
                          "give expert folders (expert.dir or <workdir>/experts)")
      rows.append(summarise(directory))
    print(format_table(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
