"""Shared by the benchmarks: machine facts printed next to every figure, and the
resumable distil-then-evaluate runner of the ablations."""
import json
import os
import platform
import resource
import subprocess
import sys
import time

import psutil

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine() -> str:
  load = os.getloadavg()[0]
  return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load avg (1 min) {load:.2f} "
          f"(other CPU users distort timings: run on a quiet machine)")


SMOKE_HELP = ("tiny shapes, a step or two, seconds: checks that the script still runs "
              "(tests/test_benchmarks_smoke.py runs every script so); its figures mean nothing")


def add_smoke(parser) -> None:
  parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)


def tiny_idx(path: str, per_class: int = 20) -> str:
  """The tests' tiny Fashion-MNIST-shaped IDX folder at `path` (conftest.make_images:
  `per_class` train and 5 test images per class, as write_idx_dataset with 20), written
  unless there. In a child process: importing the tests' conftest sets their XLA flags
  in the environment, which children inherit."""
  if not os.path.isdir(path):
    subprocess.run([sys.executable, "-c", f"""
import os, sys
from tests.conftest import make_images, write_idx
os.makedirs(sys.argv[1])
for split, n, seed in (("train", {per_class}, 0), ("t10k", 5, 1)):
  x, y = make_images(n, seed=seed)
  write_idx(os.path.join(sys.argv[1], split + "-images-idx3-ubyte.gz"), x)
  write_idx(os.path.join(sys.argv[1], split + "-labels-idx1-ubyte.gz"), y)
""", path], cwd=ROOT_DIR, check=True)
  return path


def smoke_flags(folder: str) -> list[str]:
  """Config flags for a --smoke run: tiny IDX data under `folder` (50 train images per
  class: IDC's IPC 10 decodes to 40), a width-8 ConvNet, expert batches of 32."""
  return ["--config.data.source=idx",
          f"--config.data.data_dir={tiny_idx(os.path.join(folder, 'idx'), 50)}",
          "--config.data.train_per_class=0", "--config.model.width=8",
          "--config.expert.batch_size=32"]


# --smoke: sizes every `run_module` command gets last (after the script's own flags, so
# they win), in the sections its entry point reads; set by `start_smoke`.
SMOKE_SIZES = ("--config.distill.iterations=2", "--config.distill.batch_real=8",
               "--config.eval.num_nets=1", "--config.eval.epochs=2",
               "--config.eval.baselines=False", "--config.score.num_models=1",
               "--config.score.epochs=1")
_SMOKE: list[str] = []
# The dd_jax entry points that take --config flags.
_CONFIGURED = ("dd_jax.main", "dd_jax.gan.train", "dd_jax.evaluate", "dd_jax.experts",
               "dd_jax.experts.score")


def _sections_read(entry: str):
  """The config sections an entry point accepts flags of (None: all the run uses), as
  the entry point itself declares them."""
  from dd_jax.evaluate import run as eval_run   # JAX only where a smoke run needs it
  from dd_jax.experts import train
  return {"dd_jax.evaluate": eval_run.SECTIONS_READ, "dd_jax.experts": train.SECTIONS_READ,
          "dd_jax.experts.score": train.SECTIONS_READ}.get(entry)


def smoke_gan() -> tuple[str, ...]:
  """Flags for a prior at the `runlocal` variant's generator size (configs/variants.py
  `hpd`), for the --smoke runs that train one or distil through one."""
  from configs import fashion_mnist_hpd
  g = fashion_mnist_hpd.get_config("ipc=1,runlocal").gan
  return tuple(f"--config.gan.{k}={g[k]}" for k in ("resolution", "num_layers",
                                                    "channel_base", "channel_max",
                                                    "w_dim", "z_dim"))


def start_smoke(folder: str, extra: tuple[str, ...] = ()) -> None:
  """From now on every `run_module` command of a dd_jax entry point runs at the smoke
  size on the tiny data under `folder`, with `extra` flags last."""
  _SMOKE[:] = smoke_flags(folder) + list(SMOKE_SIZES) + list(extra)


def smoke_config(config, folder: str):
  """An in-process config at the smoke size: the tiny data under `folder`, width 8."""
  with config.unlocked():
    config.data.source, config.data.train_per_class = "idx", 0
    config.data.holdout_per_class = 0
    config.data.data_dir = tiny_idx(os.path.join(folder, "idx"), 50)
    config.model.width = 8
  return config


def smoke_run(folder: str) -> str:
  """A finished Fashion-MNIST MTT run at the smoke size (its experts in <run>/experts),
  for the --smoke modes of scripts that start from a set or experts; its folder."""
  run = os.path.join(folder, "smoke_run")
  if not os.path.exists(os.path.join(run, "synset.npz")):
    run_module(["dd_jax.main", "--config=configs/fashion_mnist_mtt.py:runlocal",
                f"--workdir={run}"], run + ".log")
  return run


def with_smoke(cmd: list[str]) -> list[str]:
  """`cmd` (a dd_jax entry point and its flags) with the smoke sizes appended when a
  --smoke run has started (`start_smoke`); unchanged otherwise."""
  if not _SMOKE or cmd[0] not in _CONFIGURED:
    return cmd
  reads = _sections_read(cmd[0])
  return cmd + (_SMOKE if reads is None else sections_only(_SMOKE, reads))


def torch_installed() -> bool:
  import importlib.util
  return importlib.util.find_spec("torch") is not None


def commit(repo: str = ROOT_DIR) -> str:
  """The short hash of the checkout's HEAD (what a figure was measured with)."""
  return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                        capture_output=True, text=True).stdout.strip()


def run_module(cmd: list[str], log: str) -> float:
  """`python -m <cmd>` from the repository root, output appended to `log`; seconds.
  Exits with the log's path when the command fails."""
  t = time.perf_counter()
  cmd = with_smoke(cmd)
  with open(log, "a") as f:
    r = subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT_DIR, stdout=f, stderr=f)
  if r.returncode:
    with open(log) as f:
      tail = "".join(f.readlines()[-15:])
    sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}, which ends:\n{tail}")
  return time.perf_counter() - t


def sections_only(flags: list[str], sections) -> list[str]:
  """`flags` without the --config.<section>... ones of other sections (an entry point
  refuses a field it does not read)."""
  return [f for f in flags if not f.startswith("--config.")
          or f[len("--config."):].split(".", 1)[0] in sections]


def run_arm(work: str, flags: list[str], eval_flags: tuple[str, ...] = (),
            source: str = "") -> dict:
  """One arm: `dd_jax.main` (skipped when `source`, an existing synthetic set, is given)
  then `dd_jax.evaluate` of the set with `eval_flags`, in `work`; skipped when `work`
  already has results, so a benchmark resumes. Returns {"results": per architecture,
  "timing": {"distill_s", "eval_s", "cpu_s"}}."""
  from dd_jax.evaluate import run as eval_run   # JAX only where an arm runs
  results = os.path.join(work, "eval_results.json")
  timing = os.path.join(work, "timing.json")
  if not os.path.exists(results):
    os.makedirs(work, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    secs = 0.0
    if not source:
      secs = run_module(["dd_jax.main", *flags, f"--workdir={work}"], work + ".log")
      source = os.path.join(work, "synset.npz")
    evals = run_module(["dd_jax.evaluate", *sections_only(flags, eval_run.SECTIONS_READ),
                        f"--workdir={work}",
                        f"--config.eval.source={source}", *eval_flags], work + ".log")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    with open(timing, "w") as f:
      json.dump({"distill_s": secs, "eval_s": evals, "cpu_s": cpu}, f)
  with open(results) as f:
    r = json.load(f)["results"]
  with open(timing) as f:
    return {"results": r, "timing": json.load(f)}


def distill_and_evaluate(work: str, flags: list[str]) -> tuple[float, float, dict]:
  """One ablation arm (`run_arm`) evaluated on ConvNet: (mean %, std %, timing)."""
  arm = run_arm(work, flags)
  r = arm["results"]["ConvNet"]
  return 100 * r["mean"], 100 * r["std"], arm["timing"]


def sequential_cell(work: str) -> str:
  """The ConvNet's sequential evaluation of an arm (SeqMatch): "mean ± std (after each
  stage)" in %, or "-" when the arm has none."""
  with open(os.path.join(work, "eval_results.json")) as f:
    seq = json.load(f)["results"]["ConvNet"].get("sequential")
  if not seq:
    return "-"
  stages = ", ".join(f"{100 * m:.2f}" for m in seq["stage_means"])
  return f"{100 * seq['mean']:.2f} ± {100 * seq['std']:.2f} ({stages})"


def describe(ipc: int, arm: str, mean: float, std: float, t: dict) -> str:
  return (f"IPC{ipc:<3} {arm:<12} {mean:.2f} +- {std:.2f}%  (run {t['distill_s'] / 60:.1f} "
          f"min incl. experts/scores, eval {t['eval_s'] / 60:.1f} min, CPU "
          f"{t['cpu_s'] / 60:.1f} min)")


def table(rows: list[tuple], arms: list[str]) -> str:
  """Markdown: one row per IPC, one column per arm; rows are (ipc, arm, mean, std, t)."""
  lines = ["| IPC | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
  for ipc in sorted({r[0] for r in rows}):
    cells = {r[1]: f"{r[2]:.2f} ± {r[3]:.2f}" for r in rows if r[0] == ipc}
    lines.append(f"| {ipc} | " + " | ".join(cells.get(a, "-") for a in arms) + " |")
  return "\n".join(lines)


def step_seconds(root: str, arm: str) -> str:
  """Outer steps per second from the run's log (the distiller's last progress line)."""
  rates = []
  log = os.path.join(root, arm + ".log")
  if os.path.exists(log):
    with open(log) as f:
      rates = [float(line.split(" steps/s")[0].rsplit(" ", 1)[1])
               for line in f if " steps/s" in line]
  return f"{1 / rates[-1]:.2f} s/step" if rates and rates[-1] > 0 else "n/a"
