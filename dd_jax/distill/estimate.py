"""The run's plan, printed before any compute: experts to train, outer steps, evaluations,
and an estimated wall time from a quick measurement on this machine.

The measurement: one SGD step of the run's net timed at the smallest and the largest
batch size the run uses, the fastest of a few calls after one compilation and one warm
call (seconds on a CPU), kept in a cache per machine and net so that later runs plan at
once (not when the machine is busy with other work: that rate would price every later
run at the load of that moment). The estimate multiplies those by the work left:
  experts       epochs x batches per epoch x t(expert.batch_size) x EPOCH_FACTOR
  distillation  outer steps x experts per step x N x t(batch_syn) x META_FACTOR
  evaluations   (evaluations + baselines not yet computed) x nets x epochs x batches
                x t(eval batch)
plus a compilation allowance per program. It is a rough figure (within a factor of ~2):
the progress lines' ETA, measured as the run goes, replace it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time

from absl import logging
import jax
import jax.numpy as jnp

from dd_jax import training
from dd_jax.evaluate import baselines
from dd_jax.experts import store
from dd_jax.experts import train as expert_train
from dd_jax.metadata import read_json_if_sound, write_json_atomic
from dd_jax.progress import duration

# An outer step of trajectory matching against N plain SGD steps of its inner batch: the
# forward and backward of each inner step, then the backward through it (second order),
# and the augmentation; measured on this CPU at 2.5-3.5 (runlocal, the parity budget) and
# 2.96 (the README command: 74 ms per inner step of 10 images, 25 ms per SGD step).
META_FACTOR = 3.0
# An expert epoch's steps (one compiled scan over the batches) against the measured SGD
# step, called alone: 0.77 on the README command (ConvNet, batch 256, 2 cores).
EPOCH_FACTOR = 0.8
# Compilation of each program in multiples of the measured SGD step's (which the
# persistent compilation cache shortens as it shortens theirs), from runlocal on this CPU.
COMPILE_FACTOR = {"experts": 3.0, "distill": 12.0, "eval": 5.0}


def sgd_step_seconds(model, image_shape, num_classes: int, batch: int,
                     repeats: int = 3) -> tuple[float, float]:
  """(seconds per SGD step at `batch`, seconds its compilation took) for `model`, with
  zero parameters (the values do not change the time) and no augmentation."""
  x = jnp.zeros((batch, *image_shape), jnp.float32)
  y = jnp.arange(batch, dtype=jnp.int32) % num_classes
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x[:1], train=False))
  variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  params, stats = variables["params"], variables.get("batch_stats", {})

  @jax.jit
  def step(params, x, y):
    def loss(p):
      logits, _ = training.apply(model, p, stats, x, train=True)
      return jnp.mean(training.cross_entropy(logits, y))

    grads = jax.grad(loss)(params)
    return jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)

  started = time.perf_counter()
  jax.block_until_ready(step(params, x, y))
  compile_s = time.perf_counter() - started
  return steady_seconds(lambda: jax.block_until_ready(step(params, x, y)), repeats), compile_s


def steady_seconds(call, repeats: int = 3) -> float:
  """The fastest of `repeats` timed calls after one untimed: the steady rate of a run's
  loop, not that of a start-up still warming its threads and allocations (measured at a
  run's launch, a mean of three calls came out 1.7x the loop's own rate)."""
  call()
  times = []
  for _ in range(max(repeats, 1)):
    started = time.perf_counter()
    call()
    times.append(time.perf_counter() - started)
  return min(times)


CACHE_ENV = "DD_JAX_RATES"
CACHE_DEFAULT = os.path.join("~", ".cache", "dd_jax", "rates")


def busy_load() -> float | None:
  """The 1-minute load average when other work competes for the cores (above one per
  core, this process included), else None: a rate measured then is not this machine's."""
  load = os.getloadavg()[0]
  return load if load > (os.cpu_count() or 1) else None


def cached(measure, model_config, image_shape, num_classes: int, keep: bool = True):
  """`measure` remembered per machine, JAX version, net and batch (DD_JAX_RATES, default
  ~/.cache/dd_jax/rates): measured once, the plan of every later run is instant.
  `keep=False` (a busy machine): a missing rate is measured for this plan only."""
  folder = os.path.expanduser(os.environ.get(CACHE_ENV, CACHE_DEFAULT))

  def lookup(model, shape, classes, batch):
    key = json.dumps({"model": model_config.to_dict(), "shape": list(image_shape),
                      "classes": num_classes, "batch": batch, "jax": jax.__version__,
                      "device": jax.devices()[0].device_kind, "cpus": os.cpu_count(),
                      "measure": "steady"},   # rates of the older mean are measured again
                     sort_keys=True)
    path = os.path.join(folder, hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")
    stored = read_json_if_sound(path)   # a damaged entry is measured again
    if isinstance(stored, list) and len(stored) == 2:
      return tuple(stored)
    value = measure(model, shape, classes, batch)
    if not keep:
      return value
    try:
      os.makedirs(folder, exist_ok=True)
      write_json_atomic(path, list(value))
    except OSError as e:   # an unwritable cache costs a measurement next time, no more
      logging.warning("step rate not cached (%s)", e)
    return value

  return lookup


class Rates:
  """Seconds per SGD step at any batch size, from measurements at the smallest and the
  largest batch the run uses (linear between and beyond them)."""

  def __init__(self, model, image_shape, num_classes: int, batches, measure=sgd_step_seconds):
    batches = sorted({b for b in batches if b > 0})
    self.measured = {b: measure(model, image_shape, num_classes, b)
                     for b in (batches[:1] + batches[-1:] if batches else [])}

  def __call__(self, batch: int) -> float:
    (lo, (t_lo, _)), (hi, (t_hi, _)) = min(self.measured.items()), max(self.measured.items())
    if hi == lo:
      return t_lo * batch / lo
    return t_lo + (t_hi - t_lo) * (batch - lo) / (hi - lo)

  @property
  def compile_s(self) -> float:
    return max((c for _, c in self.measured.values()), default=0.0)

  def describe(self) -> str:
    return ", ".join(f"{1e3 * t:.0f} ms at {b}" for b, (t, _) in sorted(self.measured.items()))


@dataclasses.dataclass
class Work:
  """What is left of a run, in units the measurement prices."""
  expert_epochs: int = 0          # epochs left to train, over all experts
  experts_to_train: int = 0
  expert_batches: int = 0         # per epoch
  outer_steps: int = 0
  inner_per_step: int = 0         # inner SGD steps per outer step (0: not estimated)
  inner_batch: int = 0
  evaluations: int = 0            # evaluation points x architectures
  baselines: int = 0              # the end's baseline evaluations still to train (0-2)
  eval_batches: int = 0           # per net: epochs x batches per epoch
  eval_batch: int = 0


def _committed_step(run_dir: str) -> int:
  folder = os.path.join(run_dir, "ckpt")
  steps = [int(n) for n in os.listdir(folder) if n.isdigit()] if os.path.isdir(folder) else []
  return max(steps, default=0)


def work_left(config, ctx, method) -> Work:
  """The run's remaining work: experts not yet complete, steps after the last
  checkpoint, evaluations still due (at every eval_every and the end)."""
  d, e, ev, p = config.distill, config.expert, config.eval, ctx.prepared
  w = Work()
  if method.uses_experts:
    directory = expert_train.expert_dir(config, ctx.workdir)
    missing = [i for i in range(e.num_experts) if not store.is_complete(directory, i)]
    w.experts_to_train, w.expert_epochs = len(missing), len(missing) * e.epochs
    w.expert_batches = math.ceil(len(p.x_train) / e.batch_size)
  start = _committed_step(ctx.stage.run_dir)
  w.outer_steps = max(d.iterations - start, 0)
  if method.uses_experts:
    w.inner_batch = min(d.batch_syn or ctx.pool_size, ctx.pool_size)
    w.inner_per_step = d.syn_steps * max(d.get("experts_per_step", 1), 1)
  if d.eval_every:
    points = {s for s in range(start, d.iterations) if s % d.eval_every == 0}
    w.evaluations = (len(points | {d.iterations})) * len(ev.models)
    n = ctx.set_size * method.images_per_stored(config)   # IDC: decoded images
    w.eval_batch = min(ev.batch_size, n)
    w.eval_batches = ev.num_nets * ev.epochs * math.ceil(n / ev.batch_size)
    if ev.get("baselines", False) and not ctx.stage.label:
      done = read_json_if_sound(os.path.join(ctx.stage.run_dir, "evals.json")) or []
      step0 = 0 in points or any(e.get("step") == 0 for e in done)
      w.baselines = baselines.pending(config, ctx.prepared, ctx.stage.run_dir, step0)
  return w


def plan_lines(config, ctx, method, measure=sgd_step_seconds) -> tuple[list[str], float]:
  """The plan block's lines and its estimated seconds (`measure` as sgd_step_seconds)."""
  e, d, ev = config.expert, config.distill, config.eval
  w = work_left(config, ctx, method)
  shape, classes = ctx.prepared.x_train.shape[1:], ctx.prepared.num_classes
  busy = busy_load()
  t = Rates(ctx.model, shape, classes,
            [e.batch_size if w.expert_epochs else 0,
             w.inner_batch if w.inner_per_step and w.outer_steps else 0,
             w.eval_batch if w.evaluations else 0],
            cached(measure, config.model, shape, classes, keep=busy is None))
  lines, total = [], 0.0
  if w.expert_epochs:
    s = (w.expert_epochs * w.expert_batches * t(e.batch_size) * EPOCH_FACTOR
         + COMPILE_FACTOR["experts"] * t.compile_s)
    total += s
    lines.append(f"experts: {w.experts_to_train} to train x {e.epochs} epochs "
                 f"(~{duration(s)})")
  elif method.uses_experts:
    lines.append(f"experts: {e.num_experts} stored, none to train")
  step_text = f"{w.outer_steps} outer steps of {d.iterations}"
  if w.inner_per_step and w.outer_steps:
    s = (w.outer_steps * w.inner_per_step * t(w.inner_batch) * META_FACTOR
         + COMPILE_FACTOR["distill"] * t.compile_s)
    total += s
    step_text += (f" ({w.inner_per_step} inner steps of {w.inner_batch} images each; "
                  f"~{duration(s)})")
  elif w.outer_steps:
    step_text += " (not estimated for this method: see the progress lines' ETA)"
  lines.append("distillation: " + step_text)
  if w.evaluations:
    s = ((w.evaluations + w.baselines) * w.eval_batches * t(w.eval_batch)
         + COMPILE_FACTOR["eval"] * t.compile_s)
    total += s
    lines.append(f"evaluations: {w.evaluations} x {ev.num_nets} nets x {ev.epochs} epochs"
                 + (f", then {w.baselines} baseline{'s' * (w.baselines > 1)} to compare "
                    "with" if w.baselines else "") + f" (~{duration(s)})")
  lines.append(f"estimated wall time ~{duration(total)}"
               + (f" (one SGD step of {config.model.arch} measured now: {t.describe()})"
                  if t.measured else ""))
  if busy is not None:
    lines.append(f"this machine is busy (load {busy:.1f} on {os.cpu_count()} cores): other "
                 "work slows this run, and a rate measured now is not kept for later plans")
  return lines, total


def log_plan(config, ctx, method) -> float:
  """Logs the plan block; returns its estimate in seconds."""
  lines, total = plan_lines(config, ctx, method)
  logging.info("plan%s:\n  %s", f" ({ctx.stage.label.strip()})" if ctx.stage.label else "",
               "\n  ".join(lines))
  return total

