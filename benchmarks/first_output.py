"""Seconds from launching each entry point to its first line of output, and to its plan
block where it prints one (issue 29: a user waits in silence for how long?).

  python benchmarks/first_output.py [--data-dir=/usr/share/datasets/fashion-mnist]
      [--out=results.json] [--smoke]

Each command runs from the repository root on Fashion-MNIST's runlocal config (IDX
files) in a fresh workdir; it is stopped once the awaited line has come (a run is not
waited for). Printed per entry point: first line (s), plan (s) where there is one, and
the first line's text.
"""
import argparse
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

CONFIG = "--config=configs/fashion_mnist_mtt.py:runlocal"


def entry_points(data_dir: str, work: str) -> dict[str, list[str]]:
  data = [f"--config.data.data_dir={data_dir}", "--config.data.source=idx"]
  return {
      "dd_jax.main --help": ["dd_jax.main", CONFIG, "--help"],
      "dd_jax.main": ["dd_jax.main", CONFIG, f"--workdir={work}/main", *data],
      "dd_jax.experts": ["dd_jax.experts", CONFIG, f"--workdir={work}/experts", *data],
      "dd_jax.evaluate": ["dd_jax.evaluate", CONFIG, f"--workdir={work}/eval", *data],
      "dd_jax.plan": ["dd_jax.plan", CONFIG, f"--workdir={work}/plan", *data],
      "dd_jax.interop --help": ["dd_jax.interop", "--help"],
      "dd_jax.report (bad workdir)": ["dd_jax.report", f"--workdir={work}/none"],
  }


def time_lines(cmd: list[str], wait_for: str, timeout_s: float = 600) -> dict:
  """Seconds to the first output line and to the first line containing `wait_for`."""
  started = time.perf_counter()
  proc = subprocess.Popen([sys.executable, "-m", *cmd], cwd=common.ROOT_DIR,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  out = {"first_s": None, "first_line": None, "awaited_s": None}
  sel = selectors.DefaultSelector()
  sel.register(proc.stdout, selectors.EVENT_READ)
  try:
    while time.perf_counter() - started < timeout_s:
      if not sel.select(timeout=1.0):
        if proc.poll() is not None:
          break
        continue
      line = proc.stdout.readline()
      if not line:
        break
      now = time.perf_counter() - started
      if out["first_s"] is None:
        out["first_s"], out["first_line"] = round(now, 2), line.strip()[:120]
      if wait_for and wait_for in line:
        out["awaited_s"] = round(now, 2)
        break
      if not wait_for:
        break
  finally:
    proc.kill()
    proc.wait()
  return out


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
  p.add_argument("--out", default="")
  common.add_smoke(p)
  a = p.parse_args()
  print(common.machine())
  results = {}
  with tempfile.TemporaryDirectory() as work:
    if a.smoke:   # the tests' tiny data instead of Fashion-MNIST
      a.data_dir = common.tiny_idx(os.path.join(work, "idx"), 50)
    for name, cmd in entry_points(a.data_dir, work).items():
      wait_for = "plan" if name == "dd_jax.main" else ""
      results[name] = time_lines(cmd, wait_for)
      r = results[name]
      plan = f", plan {r['awaited_s']} s" if r["awaited_s"] is not None else ""
      print(f"{name}: first line {r['first_s']} s{plan}: {r['first_line']}")
  if a.out:
    with open(a.out, "w") as f:
      json.dump({"machine": common.machine(), "results": results}, f, indent=1)


if __name__ == "__main__":
  main()
