"""The README's run command, timed against the plan it prints (issue 29: does "about an
hour" hold, and how far is the printed estimate from the wall time?).

  python benchmarks/readme_command.py --out=/tmp/readme_cmd [--variant=hour]
      [--data-dir=/usr/share/datasets/fashion-mnist] [--from-results=FILE.json]
  python benchmarks/readme_command.py --smoke     (runlocal on tiny data, in a temporary folder)

Runs the README's first `python -m dd_jax.main` command (its variants replaced by
--variant when given, e.g. `ipc=1,runlocal` for a check in a minute) in <out>/workdir,
the data read from the IDX files, every output line kept with the second it came in
<out>/run.log. Written to <out>/results.json and printed: the command, the machine, the
plan's estimate per phase and in all, and the measured seconds per phase from the log's
timestamps: start-up (launch to the plan), experts (plan to the last expert epoch),
distillation (to the last step's line, less the evaluations inside it), evaluations (the
seconds each evaluation line reports, the baselines' included), the end (last step to
exit less the evaluations in it: export, report) and the wall time. A run that exists in <out> is not run again
(delete <out>/workdir and results.json for a fresh one); --from-results prints a stored one.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

README = os.path.join(common.ROOT_DIR, "README.md")
ABSL_TIME = re.compile(r"^[IWEF]\d{4} (\d\d):(\d\d):(\d\d\.\d+)")
DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def readme_command() -> list[str]:
  """The first `python -m dd_jax.main ...` line of the README's shell blocks."""
  with open(README) as f:
    text = f.read()
  for block in re.findall(r"```bash\n(.*?)```", text, re.S):
    for line in block.replace("\\\n", " ").splitlines():
      words = shlex.split(line.split("#", 1)[0])
      if words[:3] == ["python", "-m", "dd_jax.main"]:
        return words
  sys.exit("no `python -m dd_jax.main` command in README.md")


def command_for(words: list[str], variant: str, workdir: str, data_dir: str) -> list[str]:
  out = []
  for w in words[1:]:
    if w.startswith("--config=") and variant:
      w = w.split(":", 1)[0] + ":" + variant
    elif w.startswith("--workdir="):
      w = f"--workdir={workdir}"
    out.append(w)
  return [sys.executable, *out, "--config.data.source=idx",
          f"--config.data.data_dir={data_dir}"]


def seconds_of(text: str) -> float:
  """dd_jax.progress.duration's '45s', '12m05s', '3h02m' back into seconds."""
  m = DURATION.match(text)
  h, mi, s = (int(g or 0) for g in m.groups()) if m else (0, 0, 0)
  return 3600 * h + 60 * mi + s


def run_logged(cmd: list[str], log: str) -> tuple[list[tuple[float, str]], float, int]:
  """Runs `cmd`, keeping (seconds since launch, line) for every output line: the absl
  timestamp where the line has one (stderr is read as it comes), else its arrival."""
  start_wall, start = time.time(), time.perf_counter()
  day = start_wall - (start_wall % 86400)
  lines = []
  with open(log, "w") as f:
    p = subprocess.Popen(cmd, cwd=common.ROOT_DIR, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, bufsize=1)
    for line in p.stdout:
      t = time.perf_counter() - start
      m = ABSL_TIME.match(line)
      if m:
        stamp = day + 3600 * int(m.group(1)) + 60 * int(m.group(2)) + float(m.group(3))
        t = stamp - start_wall if abs(stamp - start_wall - t) < 3600 else t
      lines.append((t, line.rstrip("\n")))
      f.write(f"{t:9.2f} {line}")
    rc = p.wait()
  return lines, time.perf_counter() - start, rc


def phases(lines: list[tuple[float, str]], wall: float) -> dict:
  """Estimated and measured seconds per phase from the run's lines."""
  est, got = {}, {}
  plan_t = next((t for t, l in lines if "plan" in l and "estimate.py" in l), None)
  for _, l in lines:
    m = re.match(r"\s+(experts|distillation|evaluations): .*~(\w+)\)$", l)
    if m:
      est[m.group(1)] = seconds_of(m.group(2))
    m = re.match(r"\s+estimated wall time ~(\w+)", l)
    if m:
      est["total"] = seconds_of(m.group(1))
  experts = [t for t, l in lines if re.search(r"expert \d+/\d+ epoch \d+/\d+:", l)]
  steps = [t for t, l in lines if re.search(r"\] step \d+/\d+: loss", l)]
  evals = [(t, float(m.group(1))) for t, l in lines   # the baselines' at the end too
           if (m := re.search(r"\] (?:step \d+ eval|baseline \(.*\)) \S+: .*, (\d+)s\)$", l))]
  if plan_t is not None:
    got["start-up"] = plan_t
    experts_end = experts[-1] if experts else plan_t
    got["experts"] = experts_end - plan_t
    if steps:
      inside = sum(s for t, s in evals if t <= steps[-1])
      got["distillation"] = steps[-1] - experts_end - inside
      got["evaluations"] = sum(s for _, s in evals)
      got["end"] = wall - steps[-1] - (got["evaluations"] - inside)
  got["total"] = wall
  return {"estimated": est, "measured": got}


ACCURACY = re.compile(r"\] (step \d+ eval|baseline \((.*?)\)) (\S+): ([\d.]+ \+- [\d.]+%)")


def accuracies(lines: list[tuple[float, str]]) -> dict:
  """The run's last evaluation and its baselines, as its log lines give them."""
  out = {}
  for _, l in lines:
    m = ACCURACY.search(l)
    if m:
      key = f"baseline: {m.group(2)}" if m.group(2) else "distilled"
      out[key] = f"{m.group(3)} {m.group(4)}" + (f" ({m.group(1)})" if not m.group(2) else "")
  return out


def table(record: dict) -> str:
  est, got = record["phases"]["estimated"], record["phases"]["measured"]
  rows = ["| phase | estimated (plan) s | measured s |", "| --- | --- | --- |"]
  for name in ("start-up", "experts", "distillation", "evaluations", "end", "total"):
    e = est.get(name)
    g = got.get(name)
    rows.append(f"| {name} | {'' if e is None else f'{e:.0f}'} | "
                f"{'' if g is None else f'{g:.0f}'} |")
  notes = [f"- {k}: {v}" for k, v in record.get("accuracies", {}).items()]
  again = record.get("plans_after_calibration")
  if again:
    notes.append(f"- estimated again ({again['what']}): "
                 + ", ".join(f"{e['total']} s" for e in again["estimated"]))
  return (f"`{record['command']}` (exit {record['rc']}), {record['machine']}\n\n"
          + "\n".join(rows) + "\n\n" + "".join(n + "\n" for n in notes)
          + "\nThe plan prices experts, distillation and evaluations "
          "(the baselines' included); start-up and the end (export, report) are not in it.")


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", default="/tmp/readme_command", help="results folder")
  p.add_argument("--variant", default="", help="replaces the README command's variants")
  p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
  p.add_argument("--from-results", default="", help="print a stored results.json")
  common.add_smoke(p)
  a = p.parse_args()
  if a.smoke:   # the README command at the runlocal size on tiny data, in a temporary folder
    with tempfile.TemporaryDirectory(prefix="readme_command_smoke_") as out:
      a.out, a.variant = out, "ipc=1,runlocal"
      a.data_dir = common.tiny_idx(os.path.join(out, "idx"), 50)
      return measure(a)
  measure(a)


def measure(a) -> None:
  path = os.path.join(a.out, "results.json")
  stored = a.from_results or (path if os.path.exists(path) else "")
  if stored:   # a stored run is printed, not run again
    with open(stored) as f:
      print(table(json.load(f)))
    return
  os.makedirs(a.out, exist_ok=True)
  cmd = command_for(readme_command(), a.variant, os.path.join(a.out, "workdir"), a.data_dir)
  machine = common.machine()
  lines, wall, rc = run_logged(cmd, os.path.join(a.out, "run.log"))
  record = {"command": " ".join(["python"] + cmd[1:]), "machine": machine,
            "load_after": os.getloadavg()[0], "rc": rc, "phases": phases(lines, wall),
            "accuracies": accuracies(lines)}
  if rc:
    sys.exit(f"the command failed ({rc}): see {os.path.join(a.out, 'run.log')}")
  with open(path, "w") as f:
    json.dump(record, f, indent=1)
  print(table(record))


if __name__ == "__main__":
  main()
