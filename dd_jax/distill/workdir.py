"""A distillation run's folder: what run it holds, and its Orbax checkpoints.

  distill/run.json     the run's identity: the config fields that shape the synthetic set
                       (less RESUMABLE_FIELDS and what the run does not use) and the
                       data's identity; a start with another identity is refused
  distill/config.json  the whole config of the latest start (for dd_jax.report)
  distill/finished.json  the whole config and summary of a run that finished: the same
                       command again prints the summary instead of running
  distill/ckpt/<step>/ Orbax checkpoints of the DistillState with their checksum
"""
from __future__ import annotations

import json
import os

import ml_collections
import orbax.checkpoint as ocp

from dd_jax import distributed, faults, integrity
from dd_jax.data import pipeline
from dd_jax.distill import methods
from dd_jax.distill import state as state_lib
from dd_jax.errors import ConfigError
from dd_jax.experts import store
from dd_jax.metadata import read_json_if_sound, spec_difference, write_json_atomic

# Fields that may change when a run is resumed: they do not shape the synthetic set.
RESUMABLE_FIELDS = {
    "data": ("source", "data_dir"),
    "model": ("conv_impl",),
    "mesh": None,   # where the arrays live, not what they become
    "distributed": None,
    "expert": ("dir", "eval_test"),
    "distill": ("iterations", "eval_every", "log_every", "checkpoint_every",
                "keep_checkpoints", "snapshot_cache_mb", "max_bad_steps",
                "nonfinite_lr_factor", "memory_limit_mb"),
    "eval": None,  # the whole section
    "score": None,
}


# Fields added after runs were recorded, with the value that does what runs did before.
ADDED_FIELDS = {
    "data": {"holdout_per_class": 0},
    "seqmatch": {"expert_epochs": []},
    "distill": {"expert_order": "draw", "formation_factor": 1},
    "idc": {"fix_iter": 1},
    "expert": {"lr_step_after": [], "lr_step_factor": 0.1, "lr_step_reset": False,
               "seed": -1},
}


def run_identity(config: ml_collections.ConfigDict, prepared: pipeline.Prepared) -> dict:
  """The config minus RESUMABLE_FIELDS, plus the data identity (JSON-able)."""
  cfg = json.loads(config.to_json())
  for section, fields in RESUMABLE_FIELDS.items():
    if fields is None:
      cfg.pop(section, None)
    else:
      for f in fields:
        cfg.get(section, {}).pop(f, None)
  drop_unused(cfg, prepared.x_train.shape[-1])
  return {"config": cfg, "data": prepared.describe()}


def drop_unused(cfg: dict, channels: int) -> None:
  """Drops, in place, the fields of an identity's config that do not change the run:
  applied to the stored identity too, so runs recorded before a field was dropped (or
  added) resume."""
  d = cfg.get("distill", {})
  for section in methods.sections_unused(cfg):   # and runs begun before it existed resume
    cfg.pop(section, None)
  if channels != 1:   # shapes one-channel nets only: RGB runs resume
    cfg.get("model", {}).pop("one_channel_padding", None)
  if not d.get("perturb_rho"):    # unused without a perturbation
    d.pop("perturb_normaliser", None)
  expert = cfg.get("expert", {})
  if expert.get("data_schedule") != "prune":   # the static removal's fields, unused
    for field in ("prune", "prune_fraction"):
      expert.get("schedule", {}).pop(field, None)
  for section, neutral in ADDED_FIELDS.items():   # at these values, runs begun before resume
    for field, value in neutral.items():
      if cfg.get(section, {}).get(field, value) == value:
        cfg.get(section, {}).pop(field, None)


def check_workdir(run_dir: str, identity: dict) -> None:
  """Refuses a workdir whose run was started with another config."""
  path = os.path.join(run_dir, "run.json")
  if os.path.exists(path):
    found = store.read_json(path)
    shape = found.get("data", {}).get("image_shape") or [1]
    drop_unused(found.get("config", {}), shape[-1])
    diff = spec_difference(found, identity)
    if diff:
      raise ConfigError("--workdir", f"{os.path.dirname(run_dir)} holds a run of a "
                        f"different config: {diff}",
                        "use a new --workdir, or the config that run was started with")


def record_workdir(run_dir: str, identity: dict,
                   config: ml_collections.ConfigDict | None = None) -> None:
  """Writes run.json once every check has passed (a refused start leaves nothing), and
  config.json: the whole config of the latest start (for dd_jax.report)."""
  path = os.path.join(run_dir, "run.json")
  if not distributed.is_primary():
    return
  os.makedirs(run_dir, exist_ok=True)
  if not os.path.exists(path):
    write_json_atomic(path, identity)
  if config is not None:
    write_json_atomic(os.path.join(run_dir, "config.json"), json.loads(config.to_json()))


FINISHED = "finished.json"


def finished_summary(config: ml_collections.ConfigDict, workdir: str) -> str | None:
  """The summary of the run `config` already finished in `workdir` (its exported set
  still there), else None. Any change of the config, e.g. more distill.iterations,
  is a run to do: that path resumes, or refuses another config."""
  if not os.path.exists(os.path.join(workdir, "synset.npz")):
    return None
  done = read_json_if_sound(os.path.join(workdir, "distill", FINISHED)) or {}
  return done.get("summary") if done.get("config") == json.loads(config.to_json()) else None


def record_finished(config: ml_collections.ConfigDict, workdir: str, summary: str) -> None:
  if distributed.is_primary():
    write_json_atomic(os.path.join(workdir, "distill", FINISHED),
                      {"config": json.loads(config.to_json()), "summary": summary})


def checkpoint_manager(run_dir: str, keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(os.path.join(run_dir, "ckpt"), options=options,
                               item_names=("state", "integrity"))


def save(manager: ocp.CheckpointManager, state: state_lib.DistillState) -> None:
  """Saves `state` (asynchronously) with the checksum `restore` checks."""
  step = int(state.step)
  if manager.latest_step() != step:
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        integrity=ocp.args.JsonSave({"state_crc32": integrity.checksum(state)})))
    faults.point("distill.checkpoint")


def restore(manager: ocp.CheckpointManager, step: int, target, run_dir: str):
  """The state saved at `step`, checked against its recorded checksum; a checkpoint that
  cannot be read or does not match is refused with what to delete."""
  folder = os.path.join(run_dir, "ckpt", str(step))
  earlier = [s for s in manager.all_steps() if s < step]
  fix = (f"delete {folder} to resume from step {max(earlier)}" if earlier else
         f"delete {os.path.join(run_dir, 'ckpt')} to start the distillation over")
  recorded = None
  if os.path.isdir(os.path.join(folder, "integrity")):   # older checkpoints have none
    recorded = integrity.restore(
        lambda: manager.restore(step, args=ocp.args.Composite(
            integrity=ocp.args.JsonRestore())).integrity,
        folder, "--workdir", fix)["state_crc32"]
  return integrity.restore(
      lambda: manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(target))).state,
      folder, "--workdir", fix, recorded)
