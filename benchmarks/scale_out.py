"""Issue 8's figures: the memory planner against measured peak RSS, and the cost of
matching several experts per outer step.

python benchmarks/scale_out.py --experts=/tmp/fm1h/experts [--root=/tmp/scale_out]
    [--parts=memory,experts]
python benchmarks/scale_out.py --smoke   (both parts on tiny data and a width-8 net; the
    first memory run trains the budget's experts at that size)

memory: three Fashion-MNIST runs (IPC 1; IPC 10 whole-set batches with and without
  remat), each `python -m dd_jax.main` in its own child process for 6 outer steps with an
  evaluation (5 nets, 10 epochs) at steps 0 and 6, so both programs run. Prints the
  plan's estimate (logged at start) next to the child's peak resident set size.
  The experts are the ablation budget's (3 plain-SGD experts x 3 epochs).
experts: one outer step (ConvNet-3 width 128, 28x28x1, IPC 1, N=20, DSA) with 1 and
  with 4 expert segments per step, on one CPU device: median seconds per step over 5
  steps after a warm-up, and the step program's memory.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

BUDGET = ["--config.expert.num_experts=3", "--config.expert.epochs=3",
          "--config.expert.sam=none", "--config.distill.syn_steps=20",
          "--config.distill.expert_epochs=2", "--config.distill.max_start_epoch=2",
          "--config.distill.iterations=6", "--config.distill.eval_every=6",
          "--config.eval.epochs=10", "--config.eval.chunk_epochs=10",
          "--config.distill.snapshot_cache_mb=64"]
CONFIGS = {
    "ipc1": ["--config=configs/fashion_mnist_mtt.py:ipc=1"],
    "ipc10": ["--config=configs/fashion_mnist_mtt.py:ipc=10",
              "--config.distill.batch_syn=100"],
    "ipc10_no_remat": ["--config=configs/fashion_mnist_mtt.py:ipc=10",
                       "--config.distill.batch_syn=100", "--config.distill.remat=False"],
}
# --smoke: 2 student steps, 10 images per step (the IPC 10 programs compile in seconds).
SMOKE_STEPS = ["--config.distill.syn_steps=2", "--config.distill.batch_syn=10"]
PEAK = re.compile(r"estimated peak (\d+) MiB per device \(([^)]*)\)")

MEASURE = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)
"""


def memory(root: str, experts: str, smoke: bool = False) -> None:
  print("| config | planned peak (MiB) | plan parts (MiB) | measured peak RSS (MiB) | "
        "plan / measured |")
  print("| --- | --- | --- | --- | --- |")
  for name, flags in CONFIGS.items():
    work = os.path.join(root, name)
    log = work + ".log"
    run = common.with_smoke(["dd_jax.main", *flags, *BUDGET,
                             f"--config.expert.dir={experts}", f"--workdir={work}"]
                            + SMOKE_STEPS * smoke)
    cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", *run]
    with open(log, "w") as f:
      out = subprocess.run(cmd, cwd=common.ROOT_DIR, stdout=subprocess.PIPE, stderr=f,
                           text=True)
    rss_kb, status = out.stdout.split()[-2:]
    if status != "0":
      sys.exit(f"{name} failed; see {log}")
    with open(log) as f:
      found = PEAK.search(f.read())
    planned, parts = int(found.group(1)), found.group(2).split(";")[0]
    measured = int(rss_kb) / 1024
    print(f"| {name} | {planned} | {parts} | {measured:.0f} | {planned / measured:.2f} |",
          flush=True)


def experts_cost(smoke: bool = False) -> None:
  import jax
  import numpy as np
  from configs.common import base_config
  from dd_jax import models
  from dd_jax.distill import state as state_lib
  from dd_jax.distill.step import Fixed, Segment, StepSettings, compiled_step
  from dd_jax.memory import MiB, program_bytes

  print("| segments per step | s/step (median of 5) | step program (MiB) |")
  print("| --- | --- | --- |")
  base = None
  for e in (1, 4):
    config = base_config()
    d = config.distill
    d.update(dict(syn_steps=2 if smoke else 20, batch_syn=0, ipc=1, lr_img=1000.0,
                  experts_per_step=e))
    config.model.width = 8 if smoke else config.model.width
    model = models.from_config(config.model, 10)
    rng = np.random.RandomState(0)
    side = 8 if smoke else 28
    x = rng.randn(10, side, side, 1).astype(np.float32)
    params = [model.init(jax.random.PRNGKey(j), x[:1], train=False)["params"]
              for j in range(e)]
    stack = (lambda ps: jax.tree.map(lambda *a: np.stack(a), *ps)) if e > 1 else (
        lambda ps: ps[0])
    start = stack(params)
    target = stack([jax.tree.map(lambda a: a * 1.01, p) for p in params])
    state = state_lib.create(d, x, np.arange(10, dtype=np.int32), 0)
    step = compiled_step(model, StepSettings.from_config(d))
    segment = Segment(start, target)
    size = program_bytes(step.lower(state, segment, Fixed({})).compile()) / MiB
    state, m = step(state, segment, Fixed({}))
    jax.block_until_ready(state)
    times = []
    for _ in range(5):
      t = time.perf_counter()
      state, m = step(state, segment, Fixed({}))
      jax.block_until_ready(state)
      times.append(time.perf_counter() - t)
    median = statistics.median(times)
    base = base or median
    print(f"| {e} | {median:.2f} ({median / base:.2f}x) | {size:.0f} |", flush=True)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--root", default="/tmp/scale_out")
  p.add_argument("--experts", default="", help="the ablation budget's plain experts")
  p.add_argument("--parts", default="memory,experts")
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:   # each memory run at the smoke size; the first trains the experts
    with tempfile.TemporaryDirectory(prefix="scale_out_smoke_") as root:
      common.start_smoke(root)
      args.root, args.experts = root, os.path.join(root, "experts")
      return study(args, smoke=True)
  if not args.experts:
    p.error("--experts is required (the ablation budget's plain experts)")
  study(args)


def study(args, smoke: bool = False) -> None:
  os.makedirs(args.root, exist_ok=True)
  print(common.machine())
  parts = args.parts.split(",")
  if "memory" in parts:
    memory(args.root, args.experts, smoke)
  if "experts" in parts:
    experts_cost(smoke)
  print(common.machine())


if __name__ == "__main__":
  main()
