"""One outer MTT step (N student steps with DSA, meta-gradient, optimiser updates): our
compiled step against a PyTorch port of the official inner loop (flat parameter vector,
autograd.grad with create_graph=True, backward through all N steps).

ConvNet-3 width 128, batch_syn = the whole set, CPU. Every case runs in its own process,
so peak RSS is that case's alone. Prints wall time per step (median of --steps after a
warm-up), compile time, peak RSS and its growth over the set-up, XLA's FLOP count per step
and the CPU's measured f32 matmul peak.

python benchmarks/distill_step.py [--steps 5] [--cases 28x28x1:1:20,...] [--smoke]

Exits 1 when a case fails (the others still print).
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DEFAULT_CASES = ("28x28x1:1:20,28x28x1:1:80,28x28x1:10:20,"
                 "32x32x3:1:20,32x32x3:1:80,32x32x3:10:20")
STRATEGY = "color_crop_cutout_flip_scale_rotate"


def _status_mb(field: str) -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024
  return float("nan")


def _rss_mb() -> float:
  return _status_mb("VmRSS")


def _peak_mb() -> float:
  """Peak RSS since the last `_reset_peak` (VmHWM)."""
  return _status_mb("VmHWM")


def _reset_peak() -> None:
  """Linux: writing 5 to clear_refs resets VmHWM, so the peak of the steps is measured
  without the compiler's (reported separately)."""
  with open("/proc/self/clear_refs", "w") as f:
    f.write("5")


def ours(shape, ipc, n_steps, remat, steps):
  import jax
  import jax.numpy as jnp
  from dd_jax import models
  from dd_jax.distill import state as state_lib
  from dd_jax.distill.step import Fixed, Segment, StepSettings, make_step

  from configs.common import base_config
  d = base_config().distill   # every field a step reads, with these overrides
  d.update(dict(
      syn_steps=n_steps, batch_syn=0, dsa_strategy=STRATEGY, remat=remat,
      syn_lr_param="linear", min_syn_lr=1e-6, lr_img=1000.0, img_momentum=0.5,
      lr_lr=1e-5, lr_momentum=0.5, ipc=ipc, pix_init="noise", lr_teacher=0.01,
      param_mask="none", param_mask_ratio=0.0, soft_labels=False, lr_y=2.0,
      label_momentum=0.9, loss_threshold=0.0))
  model = models.build("ConvNet", 10)
  x = jax.random.normal(jax.random.PRNGKey(0), (10 * ipc,) + shape)
  start = model.init(jax.random.PRNGKey(1), x[:1], train=False)["params"]
  target = jax.tree.map(lambda p: p + 0.01 * jnp.sign(p), start)
  import numpy as np
  state = state_lib.create(d, np.asarray(x), np.repeat(np.arange(10), ipc), 0)
  state = jax.device_put(state, jax.devices()[0])
  step = jax.jit(make_step(model, StepSettings.from_config(d)))
  t = time.perf_counter()
  compiled = step.lower(state, Segment(start, target), Fixed({})).compile()
  compile_s = time.perf_counter() - t
  compile_peak = _peak_mb()
  _reset_peak()          # the steps' peak, first (allocating) execution included
  setup_rss = _rss_mb()
  state, m = compiled(state, Segment(start, target), Fixed({}))   # warm-up
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, m = compiled(state, Segment(start, target), Fixed({}))
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  return {"step_s": statistics.median(times), "compile_s": compile_s,
          "flops": flops_per_step(model, shape, ipc, n_steps), "peak_mb": _peak_mb(),
          "setup_mb": setup_rss, "compile_peak_mb": compile_peak, "loss": float(m["loss"])}


def flops_per_step(model, shape, ipc, n_steps) -> float:
  """XLA's FLOP count of the meta-gradient of an N-step unroll. Cost analysis counts a
  loop body once, so the unroll is written out for N = 1 and 2 (no DSA) and the
  per-step cost extrapolated: flops(N) = f1 + (N - 1) (f2 - f1)."""
  import jax
  import jax.numpy as jnp
  from dd_jax import losses, training

  x = jnp.zeros((10 * ipc,) + shape)
  y = jnp.repeat(jnp.arange(10), ipc)
  start = model.init(jax.random.PRNGKey(1), x[:1], train=False)["params"]

  def per_sample(p, xb, yb):
    return training.cross_entropy(model.apply({"params": p}, xb, train=True), yb)

  def count(n):
    def meta(images, lr):
      p = start
      for _ in range(n):
        p, _, _ = losses.inner_step(per_sample, p, lr, images, y)
      return losses.trajectory_matching_loss(p, start, jax.tree.map(jnp.ones_like, start))
    cost = jax.jit(jax.grad(meta, argnums=(0, 1))).lower(x, 0.01).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])

  f1, f2 = count(1), count(2)
  return f1 + (n_steps - 1) * (f2 - f1)


def theirs(shape, ipc, n_steps, steps):
  import torch
  from torch.func import functional_call
  from benchmarks.torch_port import augment, networks

  torch.manual_seed(0)
  h, w, c = shape
  net = networks.ConvNet(c, 10, im_size=(h, w))
  net.train()
  names = [n for n, _ in net.named_parameters()]
  shapes = [p.shape for _, p in net.named_parameters()]
  sizes = [p.numel() for _, p in net.named_parameters()]
  start = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
  target = start + 0.01 * torch.sign(start)
  image_syn = torch.randn(10 * ipc, c, h, w, requires_grad=True)
  label_syn = torch.arange(10).repeat_interleave(ipc)
  syn_lr = torch.tensor(0.01, requires_grad=True)
  opt_img = torch.optim.SGD([image_syn], lr=1000, momentum=0.5)
  opt_lr = torch.optim.SGD([syn_lr], lr=1e-5, momentum=0.5)
  criterion = torch.nn.CrossEntropyLoss()

  def forward(flat, x):   # ReparamModule: parameters as views of one flat vector
    views = dict(zip(names, (t.view(s) for t, s in zip(flat.split(sizes), shapes))))
    return functional_call(net, views, (x,))

  def outer_step():
    student = [start.clone().requires_grad_(True)]
    chunks = []
    for _ in range(n_steps):
      if not chunks:
        chunks = list(torch.split(torch.randperm(len(image_syn)), len(image_syn)))
      idx = chunks.pop()
      x = augment.dsa(image_syn[idx], STRATEGY)
      ce = criterion(forward(student[-1], x), label_syn[idx])
      grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
      student.append(student[-1] - syn_lr * grad)
    loss = (torch.nn.functional.mse_loss(student[-1], target, reduction="sum")
            / torch.nn.functional.mse_loss(start, target, reduction="sum"))
    opt_img.zero_grad()
    opt_lr.zero_grad()
    loss.backward()
    opt_img.step()
    opt_lr.step()
    return float(loss)

  _reset_peak()
  setup_rss = _rss_mb()
  outer_step()   # warm-up
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    loss = outer_step()
    times.append(time.perf_counter() - t)
  return {"step_s": statistics.median(times), "peak_mb": _peak_mb(), "setup_mb": setup_rss,
          "loss": loss, "threads": torch.get_num_threads()}


def matmul_peak_gflops() -> float:
  import jax
  a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048))
  f = jax.jit(lambda a: a @ a)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(5):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * 2048 ** 3 / best / 1e9


def _one(args):
  h, w, c = (int(v) for v in args.shape.split("x"))
  if args.impl == "torch":
    out = theirs((h, w, c), args.ipc, args.n, args.steps)
  else:
    out = ours((h, w, c), args.ipc, args.n, args.impl == "ours_remat", args.steps)
  print(json.dumps(out))


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--cases", default=DEFAULT_CASES, help="HxWxC:ipc:N,...")
  p.add_argument("--impls", default="ours_remat,ours,torch")
  p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--impl"), p.add_argument("--shape"), p.add_argument("--ipc", type=int)
  p.add_argument("--n", type=int)
  p.add_argument("--smoke", action="store_true", help="one 8x8 case of 2 student steps, "
                 "1 timed step: checks that the script still runs")
  args = p.parse_args()
  if args.one:
    return _one(args)
  if args.smoke:
    args.cases, args.steps = "8x8x1:1:2", 1
    if importlib.util.find_spec("torch") is None:
      args.impls = "ours_remat,ours"

  import jax
  from benchmarks.common import machine
  print(f"machine: {machine()}")
  peak = matmul_peak_gflops()
  print(f"jax {jax.__version__} ({jax.default_backend()}); f32 matmul peak here "
        f"{peak:.0f} GFLOP/s (2048^2 jitted matmul, best of 5)")
  env = dict(os.environ, PYTHONPATH=ROOT)
  failed = []
  for case in args.cases.split(","):
    shape, ipc, n = case.split(":")
    results = {}
    for impl in args.impls.split(","):
      cmd = [sys.executable, __file__, "--one", f"--impl={impl}", f"--shape={shape}",
             f"--ipc={ipc}", f"--n={n}", f"--steps={args.steps}"]
      r = subprocess.run(cmd, env=env, capture_output=True, text=True)
      if r.returncode != 0:
        print(f"{case} {impl}: failed\n{r.stderr[-1500:]}")
        failed.append(f"{case} {impl}")
        continue
      results[impl] = json.loads(r.stdout.strip().splitlines()[-1])
    for impl, res in results.items():
      extra = ""
      if "flops" in res:
        gf = res["flops"] / 1e9
        extra = (f" compile {res['compile_s']:5.1f}s  {gf:6.1f} GFLOP/step = "
                 f"{gf / res['step_s']:5.1f} GFLOP/s ({100 * gf / res['step_s'] / peak:.0f}% "
                 f"of peak)")
      ratio = ""
      if "torch" in results and impl != "torch":
        t = results["torch"]
        ratio = (f"  vs torch: time {res['step_s'] / t['step_s']:.2f}x, peak RSS "
                 f"{res['peak_mb'] / t['peak_mb']:.2f}x, growth "
                 f"{(res['peak_mb'] - res['setup_mb']) / max(t['peak_mb'] - t['setup_mb'], 1):.2f}x")
      if "compile_peak_mb" in res:
        extra += f" (compiler peak RSS {res['compile_peak_mb']:.0f} MB)"
      print(f"{shape} IPC{ipc} N={n:>3} {impl:10s}: {res['step_s'] * 1000:8.1f} ms/step  "
            f"peak RSS {res['peak_mb']:6.0f} MB (+{res['peak_mb'] - res['setup_mb']:5.0f} over "
            f"set-up){extra}{ratio}", flush=True)
  if failed:
    sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
  main()
