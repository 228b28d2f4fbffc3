"""Multi-process runs: one process per host, all running the same command, joined by
`jax.distributed` before JAX touches a device.

Driven by the `distributed` config section, each field overridable from the
environment (launch/ scripts set these):
  coordinator   DD_JAX_COORDINATOR     host:port of process 0
  num_processes DD_JAX_NUM_PROCESSES   1 = a single-process run (nothing to join)
  process_id    DD_JAX_PROCESS_ID      this process, 0 .. num_processes - 1
  auto          DD_JAX_AUTO=1          let JAX find all three (Cloud TPU VM slices, SLURM)

Every process computes; only process 0 writes the run's files (`is_primary`); Orbax
checkpoints are written by all of them together, as Orbax coordinates.
"""
from __future__ import annotations

import os

from absl import logging
import jax

from dd_jax.errors import require

ENV = {"coordinator": "DD_JAX_COORDINATOR", "num_processes": "DD_JAX_NUM_PROCESSES",
       "process_id": "DD_JAX_PROCESS_ID", "auto": "DD_JAX_AUTO"}


def settings(section) -> dict:
  """The section's fields, each replaced by its environment variable when set."""
  out = {name: section[name] for name in ENV}
  for name, var in ENV.items():
    if os.environ.get(var, "") != "":
      value = os.environ[var]
      out[name] = (value.lower() in ("1", "true", "yes") if name == "auto"
                   else int(value) if name != "coordinator" else value)
  return out


def initialize(config) -> None:
  """Joins the processes of a multi-process run (a no-op for one process). Must run
  before anything asks JAX for its devices."""
  if "distributed" not in config:
    return
  s = settings(config.distributed)
  if s["auto"]:
    jax.distributed.initialize()
  elif s["num_processes"] > 1:
    require(bool(s["coordinator"]), "distributed.coordinator", "is empty",
            "give host:port of process 0 (every process the same), e.g. 10.0.0.2:8476")
    require(0 <= s["process_id"] < s["num_processes"], "distributed.process_id",
            f"is {s['process_id']} for {s['num_processes']} processes",
            f"give each process its own id in 0..{s['num_processes'] - 1}")
    jax.distributed.initialize(coordinator_address=s["coordinator"],
                               num_processes=s["num_processes"],
                               process_id=s["process_id"])
  else:
    return
  logging.info("process %d of %d: %d local of %d devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0
