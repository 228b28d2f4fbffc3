"""Runs one official_parity study spread over this machine's cores (issue 26):

  python benchmarks/parity_cores.py [--cores=0,1] -- <official_parity.py arguments>

A study run by official_parity.py alone is sequential: the experts, then per seed our
distillation and the official one, then every set's evaluation (at IPC 10 on a 2-core
CPU: about 7 hours, most of it the 12 evaluations). Here the same pieces are jobs, each
pinned to one core with one thread (taskset; OMP/MKL/XLA told so), taken by whichever
core is free once what it needs is done:
  experts   python -m dd_jax.experts with the study's config and expert flags
  export    those experts in the official buffer layout (<root>/buffers)
  seed S    official_parity.py --seeds=S --distill-only (ours, then the official run)
  eval      eval_parity.py on one set (<side>_<S>) and one protocol (arm), into
            <root>/eval_parts/<side>_<S>_<arm>
then the parts are merged into <root>/eval/results.json and official_parity.py runs once
with all seeds: every piece it finds done, it writes results.json and table.md as alone.
Every job resumes (a finished one is kept: <root>/jobs/<name>.done); each job's output is
in <root>/jobs/<name>.log, one line per start and end in <root>/jobs/status.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, official_parity  # noqa: E402
from dd_jax.experts import train  # noqa: E402
from dd_jax.metadata import read_json_if_sound, write_json_atomic  # noqa: E402

SCRIPT = os.path.join(common.ROOT_DIR, "benchmarks", "official_parity.py")


def jobs(study: list[str]) -> dict[str, tuple[list[str], list[str]]]:
  """{name: (command, names it waits for)} for the study given by official_parity's
  arguments `study`, in the order they are taken."""
  a = official_parity.parser().parse_args(study)
  if not a.root or not a.official:
    sys.exit("parity_cores: the study needs --root and --official")
  py, seeds = sys.executable, [int(s) for s in a.seeds.split(",")]
  expert_flags = common.sections_only(official_parity.budget_flags(a, 0), train.SECTIONS_READ)
  out = {"experts": ([py, "-m", "dd_jax.experts", *expert_flags,
                      f"--workdir={os.path.join(a.root, 'experts_run')}"], []),
         "export": ([py, "-m", "dd_jax.interop", "export-experts",
                     f"--src={official_parity.experts_dir(a)}",
                     f"--dst={official_parity.buffers_folder(a)}"],
                    ["experts"])}
  for s in seeds:
    out[f"seed{s}"] = ([py, SCRIPT, *study, f"--seeds={s}", "--distill-only"], ["export"])
  for s in seeds:
    for side in ("ours", "official"):
      for arm in ("official", "ours"):
        out[f"eval_{side}_{s}_{arm}"] = (
            [py, "-m", "benchmarks.eval_parity", *official_parity.eval_flags(a),
             f"--out={os.path.join(a.root, 'eval_parts', f'{side}_{s}_{arm}')}",
             f"--sets={os.path.join(a.root, f'{side}_{s}', 'synset.npz')}", f"--arms={arm}"],
            [f"seed{s}"])
  return out


def one_thread_env() -> dict:
  return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
              XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


def run_jobs(todo: dict, cores: list[int], folder: str) -> list[str]:
  """Runs `todo` on `cores`, one job per core at a time; the names that failed."""
  os.makedirs(folder, exist_ok=True)
  done = {k for k in todo if os.path.exists(os.path.join(folder, k + ".done"))}
  running, failed, lock = set(), [], threading.Lock()

  def status(line: str) -> None:
    with open(os.path.join(folder, "status"), "a") as f:
      f.write(time.strftime("%H:%M:%S ") + line + "\n")
    print(line, flush=True)

  def worker(core: int) -> None:
    while True:
      with lock:
        left = [k for k in todo if k not in done | running | set(failed)]
        blocked = any(d in failed for k in left for d in todo[k][1])
        ready = [k for k in left if all(d in done for d in todo[k][1])]
        if not left or (not ready and not running and blocked):
          return
        name = ready[0] if ready else None
        if name:
          running.add(name)
      if name is None:
        time.sleep(5)
        continue
      status(f"core {core}: {name} started")
      started = time.time()
      with open(os.path.join(folder, name + ".log"), "a") as log:
        rc = subprocess.run(["taskset", "-c", str(core), *todo[name][0]], cwd=common.ROOT_DIR,
                            env=one_thread_env(), stdout=log, stderr=log).returncode
      status(f"core {core}: {name} {'done' if rc == 0 else f'FAILED ({rc})'} "
             f"after {time.time() - started:.0f} s")
      with lock:
        running.discard(name)
        if rc == 0:
          done.add(name)
          open(os.path.join(folder, name + ".done"), "w").close()
        else:
          failed.append(name)

  threads = [threading.Thread(target=worker, args=(c,)) for c in cores]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  return failed


def merge_evaluations(root: str) -> None:
  """<root>/eval_parts/*/results.json into <root>/eval/results.json (kept entries too)."""
  path = os.path.join(root, "eval", "results.json")
  merged = read_json_if_sound(path) or {}
  parts = os.path.join(root, "eval_parts")
  for part in sorted(os.listdir(parts)) if os.path.isdir(parts) else []:
    found = os.path.join(parts, part, "results.json")
    if os.path.exists(found):
      with open(found) as f:
        for s, r in json.load(f).items():
          merged.setdefault(s, {}).update(r)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  write_json_atomic(path, merged)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              usage="%(prog)s [--cores=0,1] -- <official_parity.py arguments>")
  p.add_argument("--cores", default=",".join(str(c) for c in range(os.cpu_count() or 1)))
  p.add_argument("study", nargs=argparse.REMAINDER)
  a = p.parse_args()
  study = [s for s in a.study if s != "--"]
  todo = jobs(study)
  root = official_parity.parser().parse_args(study).root
  failed = run_jobs(todo, [int(c) for c in a.cores.split(",")], os.path.join(root, "jobs"))
  if failed:
    sys.exit(f"parity_cores: {', '.join(failed)} failed: see {root}/jobs/<name>.log")
  merge_evaluations(root)
  subprocess.run([sys.executable, SCRIPT, *study], cwd=common.ROOT_DIR, check=True)


if __name__ == "__main__":
  main()
