"""Memory a distillation run needs per device, told before it starts.

The estimate adds what stays allocated to the largest program the run executes:
  process: on CPU the process itself (Python, JAX, TensorFlow for the metric writer,
    the loaded dataset), measured as its resident size when the plan is made; on an
    accelerator nothing (host memory);
  snapshots: the expert-snapshot cache at its bound (distill.snapshot_cache_mb, or all
    the snapshots the start window can touch when they take less);
  the larger of two compiled programs, each as XLA's buffer assignment sizes it
  (arguments + outputs + scratch, per device):
    step: the outer step (the unroll and its meta-gradient),
    eval: a chunk of evaluation epochs, or the test-set accuracy, of each
      `eval.models` net (the largest of these).
A run refuses to start (`check`) when the estimate exceeds the device's memory
(`distill.memory_limit_mb` when set), naming the settings that shrink it.

python -m dd_jax.plan --config=... --workdir=...  prints the plan without training
experts or a prior (shapes are all it needs): dd_jax/plan.py.
"""
from __future__ import annotations

import dataclasses
import os

import jax

from dd_jax.errors import ConfigError

MiB = 2 ** 20


def program_bytes(compiled) -> int:
  """What a compiled program holds while it runs, per device: its arguments, outputs
  (less those that reuse argument buffers) and scratch."""
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes)


def _proc_bytes(path: str, field: str) -> int | None:
  """A "<field>: <n> kB" line of a Linux /proc file, in bytes (None where unavailable)."""
  try:
    with open(path) as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return None


def resident_bytes() -> int:
  """This process's resident set size now (0 where unavailable)."""
  return _proc_bytes("/proc/self/status", "VmRSS") or 0


def _available_host_bytes() -> int:
  available = _proc_bytes("/proc/meminfo", "MemAvailable")
  if available is None:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return available


def device_limit(device=None) -> tuple[int, str]:
  """(bytes a run may use on `device`, where the figure comes from)."""
  device = device or jax.local_devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"]), f"{device.platform} device memory"
  share = _available_host_bytes() // max(1, len(jax.local_devices()))
  return resident_bytes() + share, "host memory (resident + available)"


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  parts: dict[str, int]      # process, snapshots, step, eval: bytes per device
  limit: int
  limit_source: str

  @property
  def total(self) -> int:
    p = self.parts
    return p["process"] + p["snapshots"] + max(p["step"], p["eval"])

  @property
  def fits(self) -> bool:
    return self.total <= self.limit

  def summary(self) -> str:
    parts = ", ".join(f"{name} {value / MiB:.0f}" for name, value in self.parts.items())
    return (f"estimated peak {self.total / MiB:.0f} MiB per device ({parts} MiB; the "
            f"step and the evaluation do not overlap) of {self.limit / MiB:.0f} MiB "
            f"({self.limit_source})")


def make_plan(process: int, snapshots: int, step: int, evaluation: int,
              limit_mb: float = 0) -> MemoryPlan:
  limit, source = ((int(limit_mb * MiB), "distill.memory_limit_mb") if limit_mb
                   else device_limit())
  return MemoryPlan({"process": process, "snapshots": snapshots, "step": step,
                     "eval": evaluation}, limit, source)


def check(plan: MemoryPlan, distill) -> None:
  """Refuses a plan that does not fit, with the settings that would make it fit."""
  if plan.fits:
    return
  if not distill.remat:
    field, fix = "distill.remat", ("turn distill.remat on (the unroll then keeps one "
                                   "parameter vector per student step)")
  elif plan.parts["eval"] > plan.parts["step"]:
    field, fix = "eval.batch_size", "lower eval.batch_size or eval.num_nets"
  else:
    field, fix = "distill.batch_syn", (
        f"lower distill.batch_syn (now {distill.batch_syn or 'the whole set'}) or "
        f"distill.syn_steps, use distill.remat_policy='nothing', or spread the batch "
        f"over more devices (mesh.data)")
  raise ConfigError(field, f"the run does not fit: {plan.summary()}", fix)
