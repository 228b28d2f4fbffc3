"""Fashion-MNIST quality table (issue 28): distil with a config's recipe, evaluate each
set with the protocol, and write the rows (benchmarks/results/fashion_mnist.json) and the
README table between its markers.

  python benchmarks/fashion_mnist.py experts  --root=R [--config=...] [-- flags]
  python benchmarks/fashion_mnist.py distill  --root=R --ipc=1 --seeds=0,1,2 [--config=...]
                                              [--labels=hard] [--name=...]
                                              [--ablation=<base study>] [-- flags]
  python benchmarks/fashion_mnist.py baseline --root=R --ipc=1 --seeds=0,1,2
  python benchmarks/fashion_mnist.py table    --root=R [--root=R2 ...] [--write]
  python benchmarks/fashion_mnist.py --smoke  (every phase on tiny data, in a temporary root)

`experts` trains the shared experts once into R/experts (`python -m dd_jax.experts`;
every IPC's runs read them, so their time counts once). `distill` runs, per seed, one
`python -m dd_jax.main` (no evaluation during the run, no baselines) and one `python -m
dd_jax.evaluate` of its set (eval.num_nets nets of eval.epochs, the config's protocol,
evaluation seed = the distillation seed) in R/<name>_ipc<ipc>/seed<s>; `baseline` the
random real subset of the same size under the same protocol (subset and nets seeded by
s). Each phase's wall time is recorded when it ends (R/timings.json, with the machine's
load and the commit), and a finished phase is skipped, so an interrupted study resumes.

`table` gathers every finished study under the roots into rows {method, ipc, labels,
acc_mean, acc_std (over all seeds x nets), seed_means, seeds, nets, expert_seconds (the
shared experts, once), distill_seconds (mean per seed), eval_seconds (mean per seed),
command, commit}, prints the table, and with --write stores the rows and rewrites the
README's table. Published figures beside each row: PUBLISHED below, with sources.
Studies run with --ablation=<base> (one change each from the base study, itself run with
--ablation=<its own name>) go to a second table instead: each one's flags beyond the
base's and its difference from the base, same IPC and seeds.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

RESULTS = os.path.join(common.ROOT_DIR, "benchmarks", "results", "fashion_mnist.json")
README = os.path.join(common.ROOT_DIR, "README.md")
BEGIN, END = "<!-- fashion_mnist table: begin -->", "<!-- fashion_mnist table: end -->"
CONFIG = "configs/fashion_mnist_mtt.py"
LABELS = ("hard", "soft", "kd", "multi-formation")
# The best published figures read for each IPC (Fashion-MNIST), %: hard labels on the
# DC ConvNet-3 (DSA: VICO-UoE/DatasetCondensation's README Table 2, arXiv 2102.08259;
# IDC-I, IDC's training without its multi-formation: snu-mllab/Efficient-Dataset-
# Condensation README "Basic results", arXiv 2205.14959); IDC's multi-formation (same
# README); learned labels on another net (KIP to a finite ConvNet without norm, arXiv
# 2107.13034 Table 2). FRePo, RFAD and RCIG report learned-label figures (their code:
# learned labels, no ZCA on Fashion-MNIST); their tables could not be read here.
PUBLISHED: dict[int, list[tuple[str, float, str]]] = {
    1: [("DSA", 70.6, "hard"), ("IDC-I", 70.7, "hard"), ("IDC", 81.0, "multi-formation"),
        ("KIP to NN", 73.8, "learned labels")],
    10: [("DSA", 84.6, "hard"), ("IDC-I", 85.3, "hard"), ("IDC", 86.0, "multi-formation"),
         ("KIP to NN", 86.8, "learned labels")],
    50: [("DSA", 88.7, "hard"), ("IDC-I", 89.1, "hard"), ("IDC", 86.2, "multi-formation"),
         ("KIP to NN", 87.8, "learned labels")],
}


def _timings(root: str) -> dict:
  path = os.path.join(root, "timings.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _record(root: str, key: str, seconds: float, command: list[str]) -> None:
  """Adds a finished phase's wall time (and the load and commit it ran under)."""
  timings = _timings(root)
  timings[key] = {"seconds": round(seconds, 1), "load": round(os.getloadavg()[0], 2),
                  "command": " ".join(command), "commit": common.commit(),
                  "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
  tmp = os.path.join(root, "timings.json.tmp")
  with open(tmp, "w") as f:
    json.dump(timings, f, indent=1, sort_keys=True)
  os.replace(tmp, os.path.join(root, "timings.json"))


def _phase(root: str, key: str, cmd: list[str], done: str) -> None:
  """Runs `python -m <cmd>` unless `done` exists; records its wall time."""
  if os.path.exists(done):
    return
  os.makedirs(os.path.dirname(done), exist_ok=True)
  log = os.path.join(root, key.replace("/", "_") + ".log")
  print(f"{key}: python -m {' '.join(cmd)} (log {log})", flush=True)
  seconds = common.run_module(cmd, log)
  _record(root, key, seconds, ["python", "-m", *cmd])
  print(f"{key}: {seconds / 60:.1f} min", flush=True)


def _experts_flags(root: str) -> list[str]:
  with open(os.path.join(root, "experts.json")) as f:
    return json.load(f)["flags"]


def experts(root: str, config: str, flags: list[str]) -> None:
  os.makedirs(root, exist_ok=True)
  spec = os.path.join(root, "experts.json")
  if os.path.exists(spec) and _experts_flags(root) != flags:
    sys.exit(f"{root} holds experts trained with {_experts_flags(root)}; use another root")
  with open(spec, "w") as f:
    json.dump({"config": config, "flags": flags}, f)
  _phase(root, "experts", ["dd_jax.experts", f"--config={config}",
                           f"--workdir={os.path.join(root, 'experts_run')}",
                           f"--config.expert.dir={os.path.join(root, 'experts')}", *flags],
         os.path.join(root, "experts", "done"))
  open(os.path.join(root, "experts", "done"), "w").close()


def with_ipc(config: str, ipc: int) -> str:
  """`config` (a file, maybe with variants) with the variant ipc=<ipc> added."""
  return f"{config}{',' if ':' in config else ':'}ipc={ipc}"


def study_dir(root: str, name: str, ipc: int) -> str:
  return os.path.join(root, f"{name}_ipc{ipc}")


def distill(root: str, name: str, ipc: int, seeds: list[int], config: str, labels: str,
            flags: list[str], ablation: str = "") -> None:
  """Per seed: the distillation on the shared experts, then its evaluation."""
  expert_flags = _experts_flags(root)   # the experts' fields, so the run reuses them
  study = study_dir(root, name, ipc)
  os.makedirs(study, exist_ok=True)
  with open(os.path.join(study, "study.json"), "w") as f:
    json.dump({"method": name, "ipc": ipc, "labels": labels, "config": with_ipc(config, ipc),
               "flags": flags, "ablation": ablation}, f)
  for seed in seeds:
    work = os.path.join(study, f"seed{seed}")
    run_flags = [f"--config={with_ipc(config, ipc)}", f"--config.seed={seed}",
                 "--config.expert.seed=0",
                 f"--config.expert.dir={os.path.join(root, 'experts')}", *expert_flags,
                 "--config.distill.eval_every=0", "--config.eval.baselines=False", *flags]
    key = f"{name}_ipc{ipc}/seed{seed}"
    _phase(root, key + "/distill", ["dd_jax.main", *run_flags, f"--workdir={work}"],
           os.path.join(work, "synset.npz"))
    _evaluate(root, key, work, run_flags, [f"--config.eval.source={work}/synset.npz",
                                           f"--config.eval.seed={seed}"])


def _evaluate(root: str, key: str, work: str, flags: list[str], eval_flags: list[str]):
  from dd_jax.evaluate import run as eval_run   # JAX only where a phase runs
  _phase(root, key + "/eval", ["dd_jax.evaluate",
                               *common.sections_only(flags, eval_run.SECTIONS_READ),
                               f"--workdir={os.path.join(work, 'eval')}", *eval_flags],
         os.path.join(work, "eval", "eval_results.json"))


def baseline(root: str, ipc: int, seeds: list[int], config: str, flags: list[str]) -> None:
  """The random real subset of `ipc` per class, seeded by each seed, same protocol."""
  study = study_dir(root, "random", ipc)
  os.makedirs(study, exist_ok=True)
  with open(os.path.join(study, "study.json"), "w") as f:
    json.dump({"method": "random", "ipc": ipc, "labels": "hard",
               "config": with_ipc(config, ipc), "flags": flags}, f)
  for seed in seeds:
    work = os.path.join(study, f"seed{seed}")
    _evaluate(root, f"random_ipc{ipc}/seed{seed}", work,
              [f"--config={with_ipc(config, ipc)}", *flags],
              ["--config.eval.source=random_real", f"--config.eval.ipc={ipc}",
               f"--config.eval.seed={seed}"])


def rows(roots: list[str]) -> list[dict]:
  """One row per finished study (every seed evaluated) under the roots."""
  out = []
  for root in roots:
    timings = _timings(root)
    for path in sorted(glob.glob(os.path.join(root, "*_ipc*", "study.json"))):
      with open(path) as f:
        study = json.load(f)
      study_key = os.path.basename(os.path.dirname(path))
      seeds, accs, seed_means, distill_s, eval_s, commits = [], [], [], [], [], set()
      for work in sorted(glob.glob(os.path.join(os.path.dirname(path), "seed*"))):
        result = os.path.join(work, "eval", "eval_results.json")
        if not os.path.exists(result):
          continue
        with open(result) as f:
          nets = [100 * a for a in json.load(f)["results"]["ConvNet"]["accuracies"]]
        seed = int(os.path.basename(work)[4:])
        key = f"{study_key}/seed{seed}"
        seeds.append(seed)
        accs += nets
        seed_means.append(round(sum(nets) / len(nets), 2))
        if key + "/distill" in timings:
          distill_s.append(timings[key + "/distill"]["seconds"])
          commits.add(timings[key + "/distill"]["commit"])
        eval_s.append(timings.get(key + "/eval", {}).get("seconds", float("nan")))
        commits.add(timings.get(key + "/eval", {}).get("commit", "?"))
      if not seeds:
        continue
      mean = sum(accs) / len(accs)
      std = (sum((a - mean) ** 2 for a in accs) / len(accs)) ** 0.5
      distilled = study["method"] != "random"
      out.append({
          "method": study["method"], "ipc": study["ipc"], "labels": study["labels"],
          "acc_mean": round(mean, 2), "acc_std": round(std, 2), "seed_means": seed_means,
          "seeds": seeds, "nets": len(accs),
          "expert_seconds": timings.get("experts", {}).get("seconds") if distilled else 0,
          "distill_seconds": round(sum(distill_s) / len(distill_s), 1) if distill_s else 0,
          "eval_seconds": round(sum(eval_s) / len(eval_s), 1),
          "command": _command(root, study) if distilled else
          f"python -m dd_jax.evaluate --config={study['config']} "
          "--config.eval.source=random_real",
          "commit": ",".join(sorted(commits)), "flags": study["flags"],
          "ablation": study.get("ablation", "")})
  return sorted(out, key=lambda r: (r["ipc"], r["method"] != "random", r["labels"], r["method"]))


def _command(root: str, study: dict) -> str:
  flags = " ".join(_experts_flags(root) + study["flags"])
  return f"python -m dd_jax.main --config={study['config']} {flags}".strip()


def ablation_markdown(table_rows: list[dict]) -> str:
  """Each ablation arm against its base study (same IPC): the flags it adds or changes
  and the difference of the pooled accuracy."""
  lines = ["| IPC | arm | change from the base | accuracy % (seeds x nets) | "
           "difference | distillation min / seed |", "|---|---|---|---|---|---|"]
  arms = [r for r in table_rows if r.get("ablation")]
  for r in sorted(arms, key=lambda r: (r["ipc"], r["method"] != r["ablation"], r["method"])):
    base = next((b for b in arms if b["method"] == r["ablation"] and b["ipc"] == r["ipc"]),
                None)
    if base is None:
      continue
    change = [f for f in r["flags"] if f not in base["flags"]]
    lines.append(
        f"| {r['ipc']} | {r['method']} | "
        + ("(the base)" if r is base else "`" + " ".join(change) + "`" if change else "-")
        + f" | {r['acc_mean']:.2f} ± {r['acc_std']:.2f} ({len(r['seeds'])} x "
        f"{r['nets'] // len(r['seeds'])}) | "
        + ("" if r is base else f"{r['acc_mean'] - base['acc_mean']:+.2f}")
        + f" | {_minutes(r['distill_seconds'])} |")
  return "\n".join(lines)


def _minutes(seconds) -> str:
  return "-" if not seconds else f"{seconds / 60:.0f}"


def markdown(table_rows: list[dict]) -> str:
  """The README table: each distilled row beside the random subset of its IPC."""
  random = {r["ipc"]: r for r in table_rows if r["method"] == "random"}
  lines = ["| IPC | method | labels | accuracy % (seeds x nets) | random real % | "
           "best published % | experts min | distillation min / seed | "
           "evaluation min / seed |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in table_rows:
    if r.get("ablation"):
      continue
    published = "; ".join(f"{v:.1f} {m} ({s})" for m, v, s in PUBLISHED.get(r["ipc"], []))
    if r["method"] == "random":   # its own row too: the baseline stands without a set
      lines.append(
          f"| {r['ipc']} | random real subset | {r['labels']} | {r['acc_mean']:.2f} ± "
          f"{r['acc_std']:.2f} ({len(r['seeds'])} x {r['nets'] // len(r['seeds'])}) | - | "
          f"{published or '-'} | - | - | {_minutes(r['eval_seconds'])} |")
      continue
    base = random.get(r["ipc"])
    lines.append(
        f"| {r['ipc']} | {r['method']} | {r['labels']} | {r['acc_mean']:.2f} ± "
        f"{r['acc_std']:.2f} ({len(r['seeds'])} x {r['nets'] // len(r['seeds'])}) | "
        + (f"{base['acc_mean']:.2f} ± {base['acc_std']:.2f}" if base else "-")
        + f" | {published or '-'} | {_minutes(r['expert_seconds'])} | "
        f"{_minutes(r['distill_seconds'])} | {_minutes(r['eval_seconds'])} |")
  return "\n".join(lines)


def write(table_rows: list[dict]) -> None:
  with open(RESULTS + ".tmp", "w") as f:
    json.dump(table_rows, f, indent=1)
  os.replace(RESULTS + ".tmp", RESULTS)
  with open(README) as f:
    text = f.read()
  if BEGIN not in text:
    sys.exit(f"README.md has no {BEGIN} ... {END} markers to write the table between")
  head, rest = text.split(BEGIN, 1)
  tables = markdown(table_rows) + "\n\nWhat each change did (one seed unless said):\n\n" \
      + ablation_markdown(table_rows)
  text = head + BEGIN + "\n" + tables + "\n" + END + rest.split(END, 1)[1]
  with open(README, "w") as f:
    f.write(text)


def main(argv: list[str]) -> None:
  argv, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
      else (argv, [])
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("phase", nargs="?", choices=("experts", "distill", "baseline", "table"))
  p.add_argument("--root", action="append")
  p.add_argument("--config", default=CONFIG)
  p.add_argument("--ipc", type=int, default=1)
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--name", default="mtt")
  p.add_argument("--labels", default="hard", choices=LABELS)
  p.add_argument("--ablation", default="", help="the base study this arm changes one thing of")
  p.add_argument("--write", action="store_true")
  common.add_smoke(p)
  a = p.parse_args(argv)
  if a.smoke:
    return smoke()
  if not a.phase or not a.root:
    p.error("give a phase and --root")
  seeds = [int(s) for s in a.seeds.split(",")]
  root = a.root[0]
  if a.phase == "experts":
    experts(root, a.config, extra)
  elif a.phase == "distill":
    distill(root, a.name, a.ipc, seeds, a.config, a.labels, extra, a.ablation)
  elif a.phase == "baseline":
    baseline(root, a.ipc, seeds, a.config, extra)
  else:
    table_rows = rows(a.root)
    print(common.machine())
    print(markdown(table_rows))
    print(ablation_markdown(table_rows))
    if a.write:
      write(table_rows)


def smoke() -> None:
  """Every phase at the runlocal size on tiny generated data, then the table."""
  with tempfile.TemporaryDirectory(prefix="fashion_mnist_smoke_") as root:
    config = f"{CONFIG}:runlocal"
    experts(root, config, common.smoke_flags(root))
    distill(root, "mtt", 1, [0], config, "hard", ["--config.distill.iterations=2"])
    baseline(root, 1, [0], config, common.smoke_flags(root))
    print(markdown(rows([root])))


if __name__ == "__main__":
  main(sys.argv[1:])
