"""Expert trajectories on disk: one Orbax checkpoint series per expert, plus JSON.

Layout of an expert folder:
  experts.json              what every trajectory here shares (data, preprocessing,
                            architecture, optimiser, epochs, seed): the `spec`
  expert_000/metadata.json  this expert's progress and per-epoch metrics
  expert_000/ckpt/<epoch>/  Orbax step = epoch (0 = the random init); items "params"
                            and, when non-empty, "train_state" (batch statistics and
                            optimiser state, needed only to resume training)

Orbax commits each step atomically, so an interrupted run leaves only whole epochs; the
writer resumes after the latest one. The reader restores only the items and epochs a
caller asks for, against an abstract target (nothing else is read from disk). Each
epoch's metrics record a CRC-32 of its parameters (`params_crc32`), checked on every
read: a damaged checkpoint is refused with the expert folder to delete.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from dd_jax import faults, integrity, metadata
from dd_jax.errors import ConfigError
from dd_jax.metadata import spec_difference, write_json_atomic

SPEC_FILE = "experts.json"
META_FILE = "metadata.json"
ITEMS = ("params", "train_state")  # train_state: batch stats + optimiser state, if any


def read_json(path: str) -> Any:
  return metadata.read_json(path, "expert.dir",
                            "delete the damaged expert folder and train it again")


def check_spec(directory: str, expected: dict) -> None:
  """Refuses a folder whose experts were trained for another data/model/optimiser."""
  found = read_json(os.path.join(directory, SPEC_FILE))
  diff = spec_difference(found, expected)
  if diff:
    raise ConfigError("expert.dir", f"{directory} holds experts for a different setup: "
                      f"{diff}", "point expert.dir at a fresh folder or match the config")


def prepare_directory(directory: str, spec: dict) -> None:
  """Creates the folder with its spec, or checks the spec of an existing one."""
  if os.path.exists(os.path.join(directory, SPEC_FILE)):
    check_spec(directory, spec)
    return
  if os.path.isdir(directory) and os.listdir(directory):
    raise ConfigError("expert.dir", f"{directory} exists, is not empty and has no "
                      f"{SPEC_FILE}", "choose an empty or new folder for expert.dir")
  os.makedirs(directory, exist_ok=True)
  write_json_atomic(os.path.join(directory, SPEC_FILE), spec)


def expert_path(directory: str, index: int) -> str:
  return os.path.join(directory, f"expert_{index:03d}")


def indices(directory: str) -> list[int]:
  """The expert indices that have a folder in `directory` (none if it does not exist)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(name[len("expert_"):]) for name in os.listdir(directory)
                if name.startswith("expert_") and name[len("expert_"):].isdigit())


def is_complete(directory: str, index: int) -> bool:
  meta = os.path.join(expert_path(directory, index), META_FILE)
  return os.path.exists(meta) and bool(read_json(meta).get("complete"))


def count_complete(directory: str) -> int:
  """How many trajectories in `directory` are complete (0 if it does not exist)."""
  return sum(is_complete(directory, i) for i in indices(directory))


def _manager(path: str, create: bool) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(create=create, enable_async_checkpointing=True)
  return ocp.CheckpointManager(os.path.join(path, "ckpt"), options=options,
                               item_names=ITEMS)


def _damaged(path: str) -> str:
  return (f"delete {path} and run the same command again: that expert is trained again "
          f"(the others are kept)")


def _recorded_crc(meta: dict, epoch: int) -> str | None:
  """The checksum recorded for `epoch` (None for experts written before it was)."""
  for m in meta.get("metrics", ()):
    if m["epoch"] == epoch:
      return m.get("params_crc32")
  return None


def _train_state(state) -> dict:
  return {"batch_stats": state.batch_stats, "opt_state": state.opt_state}


def avg_var(meta: dict) -> float | None:
  """AST's smoothness of a trajectory, Avg_Var = mean over epochs of
  |theta_e - theta_{e-1}|^2, from the per-epoch `step_sq_distance` metrics (None for
  experts trained before it was recorded)."""
  steps = [m.get("step_sq_distance") for m in meta["metrics"] if m["epoch"] >= 1]
  if not steps or any(v is None for v in steps):
    return None
  return sum(steps) / len(steps)


class TrajectoryWriter:
  """Appends one expert's epochs; knows where an interrupted expert stopped."""

  def __init__(self, directory: str, index: int):
    self.path = expert_path(directory, index)
    os.makedirs(self.path, exist_ok=True)
    self.index = index
    self._manager = _manager(self.path, create=True)
    meta_path = os.path.join(self.path, META_FILE)
    self.meta = (read_json(meta_path) if os.path.exists(meta_path)
                 else {"index": index, "complete": False, "metrics": []})
    latest = self.latest_epoch
    # Metrics written for epochs whose checkpoint never committed are dropped.
    self.meta["metrics"] = [m for m in self.meta["metrics"]
                            if latest is not None and m["epoch"] <= latest]

  @property
  def latest_epoch(self) -> int | None:
    return self._manager.latest_step()

  @property
  def complete(self) -> bool:
    return bool(self.meta.get("complete"))

  def save(self, epoch: int, state, metrics: dict | None = None) -> None:
    items = {"params": ocp.args.StandardSave(state.params)}
    extra = _train_state(state)
    if jax.tree.leaves(extra):  # Orbax refuses empty items (plain SGD, no batch norm)
      items["train_state"] = ocp.args.StandardSave(extra)
    self._manager.save(epoch, args=ocp.args.Composite(**items))
    self.meta["metrics"].append({"epoch": epoch, **(metrics or {}),
                                 "params_crc32": integrity.checksum(state.params)})
    write_json_atomic(os.path.join(self.path, META_FILE), self.meta)

  def restore(self, epoch: int, like_state):
    """The training state after `epoch`, restored onto the structure of `like_state`."""
    items = {"params": ocp.args.StandardRestore(like_state.params)}
    extra = _train_state(like_state)
    if jax.tree.leaves(extra):
      items["train_state"] = ocp.args.StandardRestore(extra)
    restored = integrity.restore(
        lambda: self._manager.restore(epoch, args=ocp.args.Composite(**items)),
        os.path.join(self.path, "ckpt", str(epoch)), "expert.dir", _damaged(self.path),
        _recorded_crc(self.meta, epoch), lambda r: r["params"])
    state = like_state.replace(params=restored["params"])
    if "train_state" in items:
      state = state.replace(**restored["train_state"])
    return state

  def finish(self, **summary) -> None:
    self._manager.wait_until_finished()
    faults.point("expert.finish")
    self.meta.update(summary, complete=True)
    write_json_atomic(os.path.join(self.path, META_FILE), self.meta)

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


class ExpertReader:
  """Reads stored trajectories lazily: one (expert, epoch) snapshot at a time."""

  def __init__(self, directory: str, expected_spec: dict | None = None):
    if not os.path.exists(os.path.join(directory, SPEC_FILE)):
      raise ConfigError("expert.dir", f"{directory} holds no experts ({SPEC_FILE} missing)",
                        "train experts first (python -m dd_jax.experts) or fix the path")
    if expected_spec is not None:
      check_spec(directory, expected_spec)
    self.directory = directory
    self.spec = read_json(os.path.join(directory, SPEC_FILE))
    self.epochs = int(self.spec["epochs"])
    self.experts = [i for i in indices(directory) if is_complete(directory, i)]
    self._managers: dict[int, ocp.CheckpointManager] = {}
    self._meta: dict[int, dict] = {}

  def metadata(self, expert: int) -> dict:
    return read_json(os.path.join(expert_path(self.directory, expert), META_FILE))

  def params(self, expert: int, epoch: int, abstract_params):
    """The parameters of `expert` after `epoch` epochs (0 = init)."""
    if expert not in self.experts:
      raise ConfigError("expert", f"expert {expert} is not complete in {self.directory}",
                        f"use one of {self.experts} or finish training")
    if not 0 <= epoch <= self.epochs:
      raise ConfigError("epoch", f"epoch {epoch} is outside the stored 0..{self.epochs}",
                        "ask for an epoch the trajectory has")
    path = expert_path(self.directory, expert)
    if expert not in self._managers:
      self._managers[expert] = _manager(path, create=False)
      self._meta[expert] = self.metadata(expert)
    # Onto this process's first device: the stored sharding names the writer's device,
    # which another process of a multi-process run does not have.
    local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=local),
                          abstract_params)
    restored = integrity.restore(
        lambda: self._managers[expert].restore(epoch, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(target))),
        os.path.join(path, "ckpt", str(epoch)), "expert.dir", _damaged(path),
        _recorded_crc(self._meta[expert], epoch), lambda r: r.params)
    return restored.params

  def close(self) -> None:
    for m in self._managers.values():
      m.close()
