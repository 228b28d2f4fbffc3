"""Named fault points: where a test kills the process to prove a run resumes.

The code calls `point("distill.checkpoint")` at the moments worth interrupting (a
checkpoint being written, a step being computed, an expert between epochs, ...). Nothing
happens unless the environment variable DD_JAX_FAULT names the point:

    DD_JAX_FAULT=distill.checkpoint:2   # SIGKILL this process the 2nd time it gets there

A SIGKILL, not an exception: no `finally`, no flushing, no Orbax finalisation, exactly
what a preempted VM or an OOM killer does. `POINTS` lists every point (the fault tests
check each is reached).
"""
from __future__ import annotations

import os
import signal

ENV = "DD_JAX_FAULT"

POINTS = {
    "expert.epoch": "an expert's epoch computed, its checkpoint not yet saved",
    "expert.checkpoint": "an expert's epoch checkpoint being written (asynchronously)",
    "expert.finish": "an expert's last checkpoint written, its metadata not yet complete",
    "distill.start": "the synthetic set initialised, no checkpoint yet",
    "distill.step": "an outer step dispatched, its result not yet read",
    "distill.checkpoint": "a distillation checkpoint being written (asynchronously)",
    "distill.evaluate": "an evaluation under way (after its first architecture's nets)",
    "distill.export": "the synthetic set's .npz written, its .json and .png not yet",
    "distill.report": "the report being written",
}
_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
  spec = os.environ.get(ENV, "")
  if not spec:
    return None
  name, _, count = spec.partition(":")
  return name, int(count or 1)


def point(name: str) -> None:
  """Kills this process with SIGKILL if DD_JAX_FAULT names `name` and this is the
  requested visit; otherwise nothing."""
  if name not in POINTS:
    raise ValueError(f"unknown fault point {name!r}")
  target = _target()
  if target is None or target[0] != name:
    return
  _hits[name] = _hits.get(name, 0) + 1
  if _hits[name] == target[1]:
    os.kill(os.getpid(), signal.SIGKILL)
