"""Where a run's arrays live: a device `Mesh` from the `mesh` config section and the
`NamedSharding`s of what a distillation step reads and writes.

Two mesh axes, each a strategy of the outer step:
  experts: `distill.experts_per_step` expert segments are matched per step (vmapped, the
    loss averaged); their snapshots are split over this axis, each device unrolls its
    own students.
  data: the student's inner mini-batch is split over this axis inside the unroll (a
    sharding constraint on each batch: XLA partitions the forward and backward passes
    and all-reduces the parameter gradients); the parameters stay replicated.
The synthetic set, its optimiser state and the student lr are replicated: they are small
next to the unroll's activations, and every device reads every image of its batches.

Evaluation spreads its nets over the process's own devices (`nets_sharding`).

Everything here is also right for one device: a 1 x 1 mesh, and `Placement.batch`
constrains nothing.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from absl import logging
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from dd_jax.errors import require

AXES = ("experts", "data")


def inner_batch(distill, num_images: int) -> int:
  """The student's mini-batch: batch_syn, or the whole set (as torch.split, never more
  than the set)."""
  return min(distill.batch_syn or num_images, num_images)


def resolve_axes(mesh_config, num_devices: int, experts_per_step: int,
                 batch: int) -> tuple[int, int]:
  """(experts, data) device counts for `mesh_config` on `num_devices` devices.

  mesh.experts: devices along the expert axis (it must divide experts_per_step).
  mesh.data: devices along the batch axis; -1 (the default) = the largest count that
  divides the inner batch and fits the devices left, so that a default config uses
  every device it can without splitting a batch unevenly.
  """
  experts, data = mesh_config.experts, mesh_config.data
  require(experts >= 1, "mesh.experts", f"is {experts}", "use 1 or more devices")
  require(experts_per_step % experts == 0, "mesh.experts",
          f"{experts} devices cannot share distill.experts_per_step={experts_per_step} "
          "expert segments evenly", "use a divisor of distill.experts_per_step")
  require(num_devices % experts == 0, "mesh.experts",
          f"{experts} does not divide the {num_devices} devices",
          f"use a divisor of {num_devices}")
  left = num_devices // experts
  if data == -1:
    data = largest_divisor(math.gcd(batch, left), left)   # divides batch and devices
  require(data >= 1, "mesh.data", f"is {data}", "use -1 (as many as fit) or 1 or more")
  require(experts * data <= num_devices, "mesh.data",
          f"mesh.experts x mesh.data = {experts} x {data} needs {experts * data} devices, "
          f"this run has {num_devices}", "use fewer devices per axis (or -1 for mesh.data)")
  require(batch % data == 0, "mesh.data",
          f"the inner batch of {batch} images cannot be split evenly over {data} devices",
          f"use a divisor of {batch} (or -1), or change distill.batch_syn")
  return experts, data


@dataclasses.dataclass(frozen=True)
class Placement:
  """A mesh and the shardings of a step (hashable: a static argument of the jit)."""
  mesh: Mesh

  @classmethod
  def from_config(cls, config, num_images: int, devices=None) -> "Placement":
    devices = list(devices if devices is not None else jax.devices())
    d = config.distill
    experts, data = resolve_axes(config.mesh, len(devices), d.experts_per_step,
                                 inner_batch(d, num_images))
    used = np.asarray(devices[:experts * data]).reshape(experts, data)
    if experts * data < len(devices):
      logging.info("mesh experts=%d x data=%d uses %d of %d devices", experts, data,
                   experts * data, len(devices))
    return cls(Mesh(used, AXES))

  @property
  def size(self) -> int:
    return self.mesh.devices.size

  @property
  def data(self) -> int:
    return self.mesh.shape["data"]

  @property
  def experts(self) -> int:
    return self.mesh.shape["experts"]

  def sharding(self, *spec) -> NamedSharding:
    return NamedSharding(self.mesh, P(*spec))

  @property
  def replicated(self) -> NamedSharding:
    return self.sharding()

  @property
  def per_expert(self) -> NamedSharding:
    """Arrays with a leading expert-segment axis, split over the expert axis."""
    return self.sharding("experts")

  def batch(self, x: jax.Array) -> jax.Array:
    """Inside the step: split a [B, ...] inner batch over the data axis (a no-op on
    one device along it). Under the expert vmap (spmd_axis_name="experts") the
    constraint gains the expert axis."""
    if self.data == 1:
      return x
    return jax.lax.with_sharding_constraint(x, self.sharding("data"))

  def put(self, tree: Any, sharding: NamedSharding) -> Any:
    """`tree` on the mesh with `sharding`, in a single or multi-process run (every
    process passes the same values; each keeps the parts on its own devices)."""
    def one(x):
      if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
      x = np.asarray(x)
      return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
    return jax.tree.map(one, tree)


def largest_divisor(n: int, at_most: int) -> int:
  return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def nets_sharding(num_nets: int, devices=None) -> NamedSharding | None:
  """Evaluation: the nets' leading axis split over as many of this process's devices
  as divide `num_nets` (5 nets on 8 devices: 5 devices); None with one device."""
  devices = list(devices if devices is not None else jax.local_devices())
  count = largest_divisor(num_nets, len(devices))
  if count == 1:
    return None
  return NamedSharding(Mesh(np.asarray(devices[:count]), ("nets",)), P("nets"))


def describe(placement: Placement) -> str:
  shape = " x ".join(f"{name}={placement.mesh.shape[name]}" for name in AXES)
  kinds = sorted({d.platform for d in placement.mesh.devices.flat})
  return (f"mesh {shape} ({placement.size} of {jax.device_count()} {'/'.join(kinds)} "
          f"devices, {jax.process_count()} process"
          f"{'es' if jax.process_count() > 1 else ''})")
