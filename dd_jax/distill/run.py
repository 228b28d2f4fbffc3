"""Distillation from a config: experts (trained if missing), the outer loop, evaluation
every `distill.eval_every` steps, clu metrics, Orbax checkpoints, export.

Workdir layout:
  experts/                 expert trajectories (unless expert.dir points elsewhere)
  distill/run.json         what this run is (config fields that shape the synthetic set,
                           data identity); a different config is refused
  distill/ckpt/<step>/     Orbax checkpoints of the DistillState; a restarted run resumes
                           from the latest
  distill/evals.json       every evaluation so far
  synset.{npz,json,png}    the synthetic set, written at every evaluation and at the end
  events.out.tfevents.*    TensorBoard scalars and image grids (clu)
"""
from __future__ import annotations

import json
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from dd_jax import disk, distributed, faults, integrity, losses, models, plan, report
from dd_jax import sharding, summaries
from dd_jax.data import augment, pipeline
from dd_jax.distill import backbones, export, idc, latent, matching, multiformation
from dd_jax.distill import representative, segments
from dd_jax.distill import labels as labels_lib
from dd_jax.distill import state as state_lib
from dd_jax.distill.step import StepSettings, compiled_step
from dd_jax.errors import ConfigError, require, require_at_least
from dd_jax.evaluate import protocol
from dd_jax.evaluate import run as eval_run
from dd_jax.experts import store
from dd_jax.experts import train as expert_train
from dd_jax.experts import schedule as schedule_lib
from dd_jax.gan import train as train_prior
from dd_jax.metadata import spec_difference, write_json_atomic, write_npz_atomic
from dd_jax.models.torch_layout import TorchLayout

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
    "expert": {"lr_step_after": [], "lr_step_factor": 0.1, "lr_step_reset": False,
               "seed": -1},
}


def validate(config: ml_collections.ConfigDict) -> None:
  if config.seqmatch.subsets:   # each subset is validated as an ordinary run
    from dd_jax.distill import seqmatch
    seqmatch.validate(config)
    return
  d = config.distill
  require_at_least(d, "distill", {"ipc": 1, "syn_steps": 1, "expert_epochs": 1,
                                  "max_start_epoch": 1, "iterations": 0, "batch_syn": 0,
                                  "eval_every": 0, "log_every": 1, "checkpoint_every": 1,
                                  "keep_checkpoints": 1, "max_bad_steps": 1})
  require(d.lr_img > 0, "distill.lr_img", f"is {d.lr_img}", "use a positive value")
  require(d.lr_lr >= 0, "distill.lr_lr", f"is {d.lr_lr}", "use 0 (fixed lr) or more")
  require(0 < d.nonfinite_lr_factor <= 1, "distill.nonfinite_lr_factor",
          f"is {d.nonfinite_lr_factor}", "use a factor in (0, 1]: 1 keeps the lrs, 0.5 halves "
          "them after each non-finite step")
  require(d.lr_teacher > 0, "distill.lr_teacher", f"is {d.lr_teacher}",
          "start the student lr at a positive value (the expert lr)")
  require(d.pix_init in state_lib.PIX_INITS, "distill.pix_init", f"unknown {d.pix_init!r}",
          f"use one of {', '.join(state_lib.PIX_INITS)}")
  require(d.syn_lr_param in state_lib.LR_PARAMS, "distill.syn_lr_param",
          f"unknown {d.syn_lr_param!r}", f"use one of {', '.join(state_lib.LR_PARAMS)}")
  require(d.min_syn_lr > 0, "distill.min_syn_lr", f"is {d.min_syn_lr}",
          "use a small positive floor such as 1e-6")
  augment.check_strategy(d.dsa_strategy, "distill.dsa_strategy")
  require(d.param_mask in losses.MASK_RULES, "distill.param_mask",
          f"unknown {d.param_mask!r}", f"use one of {', '.join(losses.MASK_RULES)}")
  require(0.0 <= d.param_mask_ratio < 1.0, "distill.param_mask_ratio",
          f"is {d.param_mask_ratio}, outside [0, 1)",
          "give the fraction of the flattened parameters to drop, e.g. 0.25")
  require(d.method in backbones.METHODS, "distill.method", f"unknown {d.method!r}",
          f"use one of {', '.join(backbones.METHODS)}")
  if d.method != "mtt":
    validate_matching(config)
  segments.check_window(d.max_start_epoch, d.expert_epochs, config.expert.epochs,
                        f"experts of expert.epochs={config.expert.epochs}")
  segments.StartWindow.from_config(d).validate()
  require(d.loss_threshold >= 0, "distill.loss_threshold", f"is {d.loss_threshold}",
          "use 0 (never skip) or the loss above which a step is skipped, e.g. 1.0")
  if labels_lib.needs_label_experts(d):
    labels_lib.label_epoch(d, config.expert.epochs)
    require(d.label_experts >= 0, "distill.label_experts", f"is {d.label_experts}",
            "use 0 (all experts) or how many experts give labels")
    require(config.model.norm != "batchnorm", "distill.soft_labels",
            "label experts with batch norm need their running statistics, which "
            "trajectories do not store", "use model.norm='instancenorm' or turn soft "
            "labels and pix_init='correct' off")
  if d.soft_labels:
    require(d.lr_y > 0, "distill.lr_y", f"is {d.lr_y}", "use a positive lr, e.g. 2.0")
    require(0 <= d.label_momentum < 1, "distill.label_momentum", f"is {d.label_momentum}",
            "use a momentum in [0, 1), e.g. 0.9")
  require(d.remat_policy in losses.REMAT_POLICIES, "distill.remat_policy",
          f"unknown {d.remat_policy!r}", f"use one of {', '.join(losses.REMAT_POLICIES)}")
  require(d.experts_per_step >= 1, "distill.experts_per_step", f"is {d.experts_per_step}",
          "use 1 (MTT) or more expert segments matched per step")
  validate_ast(config)
  validate_glad(config)
  expert_train.validate(config)
  eval_run.validate(config)


# A progress line at least this often, whatever distill.log_every says: one IDC step at
# the official settings takes minutes on a CPU.
LOG_AT_LEAST_EVERY_S = 60.0

PARAMETERIZATIONS = ("pixels", "glad", "hpd")   # hpd: GLaD's latents, layer by layer


def validate_glad(config: ml_collections.ConfigDict) -> None:
  """GLaD's latent parameterisation (the prior itself is checked when it is loaded)."""
  d, g = config.distill, config.glad
  require(d.parameterization in PARAMETERIZATIONS, "distill.parameterization",
          f"unknown {d.parameterization!r}", f"use one of {', '.join(PARAMETERIZATIONS)}")
  if d.parameterization == "pixels":
    return
  require(g.init in latent.INITS, "glad.init", f"unknown {g.init!r}",
          f"use one of {', '.join(latent.INITS)}")
  require(g.lr_w > 0 and g.lr_f > 0, "glad.lr_w", f"lr_w {g.lr_w}, lr_f {g.lr_f}",
          "use positive learning rates (GLaD's MTT values: 10 and 10000)")
  require_at_least(g, "glad", {"layer": -1, "average_samples": 1, "chunk": 1})
  require(d.pix_init in ("real", "noise"), "distill.pix_init", f"{d.pix_init!r} picks real "
          "images, GLaD starts from the prior's latents", "use pix_init='real' (ignored)")
  train_prior.validate(config)
  if d.parameterization == "hpd":
    from dd_jax.distill import hpd
    hpd.validate(config)


def validate_ast(config: ml_collections.ConfigDict) -> None:
  """AST's distillation switches (the expert-side ones are checked with the experts)."""
  d = config.distill
  require(d.intermediate in losses.INTERMEDIATE_WEIGHTS, "distill.intermediate",
          f"unknown {d.intermediate!r}", f"use one of {', '.join(losses.INTERMEDIATE_WEIGHTS)}")
  if d.intermediate != "none":
    require(d.expert_epochs <= d.syn_steps, "distill.intermediate",
            f"matching the {d.expert_epochs - 1} intermediate expert epochs needs at least "
            f"one student step per expert epoch, but distill.syn_steps={d.syn_steps} < "
            f"distill.expert_epochs={d.expert_epochs}",
            "raise distill.syn_steps, lower distill.expert_epochs, or set "
            "distill.intermediate='none'")
  require(d.perturb_rho >= 0, "distill.perturb_rho", f"is {d.perturb_rho}",
          "use 0 (off) or a positive radius, e.g. 0.1 (the paper)")
  require(d.perturb_normaliser in ("perturbed", "expert"), "distill.perturb_normaliser",
          f"unknown {d.perturb_normaliser!r}",
          "use 'perturbed' (AST's Eq. 22-23) or 'expert' (the unperturbed start)")
  require(d.perturb_style in losses.PERTURB_STYLES, "distill.perturb_style",
          f"unknown {d.perturb_style!r}", f"use one of {', '.join(losses.PERTURB_STYLES)}")
  require(0 <= d.inner_momentum < 1, "distill.inner_momentum", f"is {d.inner_momentum}",
          "use a momentum in [0, 1): 0 (MTT) or 0.9 (the AST code)")
  if d.balance_loss:
    require(d.balance_offset > 1, "distill.balance_offset", f"is {d.balance_offset}",
            "use an offset > 1 so that the log stays positive, e.g. 8 (the paper)")
    require(d.balance_log_base > 1, "distill.balance_log_base", f"is {d.balance_log_base}",
            "use a base > 1: e (the paper) or 5 (the official code)")
  if d.pix_init == "kmeans":
    require(d.kmeans_clusters >= 1, "distill.kmeans_clusters", f"is {d.kmeans_clusters}",
            "use the largest number of clusters per class, e.g. 10 (the paper)")
    require(d.kmeans_features in representative.FEATURES, "distill.kmeans_features",
            f"unknown {d.kmeans_features!r}",
            f"use one of {', '.join(representative.FEATURES)}")
    require(d.kmeans_features == "logits" or config.model.arch == "ConvNet",
            "distill.kmeans_features", f"penultimate features are read from the ConvNet "
            f"family, not {config.model.arch}", "use kmeans_features='logits'")


def balance_scale(d, start_epoch: int) -> jax.Array | None:
  """AST's balanced inner-loss factor for a segment starting at `start_epoch` (None when
  off): an argument of the compiled step, so each start epoch does not recompile."""
  if not d.balance_loss:
    return None
  return jnp.float32(losses.balanced_loss_scale(start_epoch, d.max_start_epoch,
                                                d.balance_offset, d.balance_log_base))


def validate_matching(config: ml_collections.ConfigDict) -> None:
  """DC/DM: what needs trajectories is refused; their own fields checked."""
  d = config.distill
  require(not d.soft_labels and d.pix_init != "correct", "distill.method",
          f"{d.method} has no expert trajectories, which DATM's soft labels and "
          "pix_init='correct' come from", "use distill.method='mtt' for them, or set "
          "distill.soft_labels=False and pix_init='real'")
  ast = {"intermediate": d.intermediate != "none", "perturb_rho": d.perturb_rho > 0,
         "inner_momentum": d.inner_momentum > 0, "balance_loss": d.balance_loss,
         "pix_init": d.pix_init == "kmeans"}
  used = [name for name, on in ast.items() if on]
  require(not used, f"distill.{used[0] if used else ''}", f"AST's refinements of the "
          f"trajectory-matching step ({', '.join(used)}) do not apply to {d.method}",
          "use distill.method='mtt' for them, or turn them off")
  require(d.param_mask != "loss", "distill.param_mask",
          f"{d.param_mask!r} ranks trajectory-matching errors, which {d.method} has none of",
          "use 'depth' (PAD's FIEM) or 'none'")
  require(d.method != "dm" or d.param_mask != "deep", "distill.param_mask",
          "DM always matches the last block's features; 'deep' would mask the embedding "
          "it matches", "use 'depth' (PAD's FIEM) or 'none'")
  require(d.method != "idc" or d.param_mask == "none", "distill.param_mask",
          "IDC matches every conv kernel's gradient; no parameter mask applies",
          "use distill.param_mask='none'")
  require(config.model.arch == "ConvNet" and config.model.norm != "batchnorm",
          "model.arch", f"{d.method} here matches the ConvNet family without batch norm "
          f"(got {config.model.arch}, norm {config.model.norm})",
          "use model.arch='ConvNet' with instancenorm or none")
  require_at_least(d, "distill", {"batch_real": 1, "dc_outer_loop": 0, "dc_inner_loop": 0,
                                  "schedule_steps": 1})


def validate_against_data(config: ml_collections.ConfigDict,
                          prepared: pipeline.Prepared) -> None:
  """What needs the data's shapes (before anything is written): IDC's factor."""
  if config.distill.method == "idc":
    idc.validate(config, prepared.x_train.shape[1:])


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
  if d.get("method") != "idc":   # unused; and runs begun before it existed resume
    cfg.pop("idc", None)
  elif cfg["idc"].get("fix_iter") == 1:   # the default: IDC runs begun before it resume
    cfg["idc"].pop("fix_iter")
  if channels != 1:   # shapes one-channel nets only: RGB runs resume
    cfg.get("model", {}).pop("one_channel_padding", None)
  if not d.get("perturb_rho"):    # unused without a perturbation
    d.pop("perturb_normaliser", None)
  if d.get("parameterization") != "hpd":   # unused: runs begun before its fields resume
    cfg.pop("hpd", None)
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


def _checkpoint_manager(run_dir: str, keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(os.path.join(run_dir, "ckpt"), options=options,
                               item_names=("state", "integrity"))


def _save(manager: ocp.CheckpointManager, state: state_lib.DistillState) -> None:
  """Saves `state` (asynchronously) with the checksum `_restore` checks."""
  step = int(state.step)
  if manager.latest_step() != step:
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        integrity=ocp.args.JsonSave({"state_crc32": integrity.checksum(state)})))
    faults.point("distill.checkpoint")


def _restore(manager: ocp.CheckpointManager, step: int, target, run_dir: str):
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


class StagedRun:
  """A run made of several Distiller runs (SeqMatch's subsets, H-PD's layers): the
  config checked, the data prepared, the workdir claimed for this config."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str,
               prepared: pipeline.Prepared | None = None):
    validate(config)
    self.config, self.workdir = config, workdir
    self.prepared = prepared or pipeline.prepare(config.data)
    validate_against_data(config, self.prepared)
    self.run_dir = os.path.join(workdir, "distill")
    self.identity = run_identity(config, self.prepared)
    check_workdir(self.run_dir, self.identity)


class Distiller:
  """The outer loop of one run; `run()` resumes from the latest checkpoint."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str,
               prepared: pipeline.Prepared | None = None, stage=None,
               plan_only: bool = False):
    """`stage`: a `seqmatch.Stage` when this run is one SeqMatch subset (its folder,
    the frozen earlier subsets, its initial images); None for an ordinary run.
    `plan_only`: build what `memory_plan` needs (shapes, the compiled step), no
    experts, no prior training; such a Distiller cannot run."""
    validate(config)
    self.config, self.workdir, self.stage = config, workdir, stage
    self.plan_only = plan_only
    self.prepared = prepared or pipeline.prepare(config.data)
    validate_against_data(config, self.prepared)
    self.run_dir = stage.run_dir if stage else os.path.join(workdir, "distill")
    self.step_offset = stage.step_offset if stage else 0
    frozen = stage.frozen() if stage else None
    self.frozen = (None if frozen is None else
                   (jnp.asarray(frozen[0], jnp.float32), jnp.asarray(frozen[1])))
    self.final_state = None
    self.identity = run_identity(config, self.prepared)
    check_workdir(self.run_dir, self.identity)  # before any compute
    d = config.distill
    self.model = models.from_config(config.model, self.prepared.num_classes)
    x0 = jnp.asarray(self.prepared.x_train[:1])
    variables = self.model.init(jax.random.PRNGKey(0), x0, train=False)
    self.batch_stats = variables.get("batch_stats", {})
    self.abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                                 variables["params"])
    layout = TorchLayout.of(self.model, self.prepared.x_train.shape[1:])
    # PAD's parameter mask: an argument of the step (never a closed-over constant).
    # ("loss" masks are built inside the step from each unroll.)
    self.mask = (losses.make_mask(layout.positions(), d.param_mask, d.param_mask_ratio)
                 if d.param_mask != "loss" else None)
    if self.mask is not None:
      kept = sum(int(m.sum()) for m in jax.tree.leaves(self.mask))
      logging.info("parameter mask %s %.2f: %d of %d parameters matched", d.param_mask,
                   d.param_mask_ratio, kept, layout.num_params)
    if not plan_only:
      self._check_disk()
    self.reader = self.placement = None
    self.space = self.prior = self.latent_tx = None
    if d.parameterization in ("glad", "hpd"):
      gen, params = train_prior.load_prior(config, workdir, self.prepared, plan_only)
      self.glad_layer = latent.resolve_layer(config.glad.layer, gen)
      x = self.prepared.x_train
      self.space = latent.LatentSpace(gen, self.glad_layer, tuple(x.shape[1:3]),
                                      x.shape[3], config.glad.chunk)
      self.prior = (params, latent.preprocessing_arrays(self.prepared.pre))
      g = config.glad
      self.latent_tx = latent.latent_optimizer(g.lr_w, g.lr_f, g.momentum)
      self._render = jax.jit(self.space.render)
    if d.method == "mtt":
      pool = self.prepared.num_classes * d.ipc + (0 if self.frozen is None
                                                   else self.frozen[0].shape[0])
      self.placement = sharding.Placement.from_config(config, pool)  # before any compute
      logging.info("%s", sharding.describe(self.placement))
      self._prepare_trajectories()
    else:
      self._prepare_matching()
    self.evals_path = os.path.join(self.run_dir, "evals.json")
    self.exported, self.exported_step = None, None
    self.eval_seconds = 0.0   # kept out of the steps/s and ETA figures
    self.evals = (store.read_json(self.evals_path) if os.path.exists(self.evals_path)
                  else [])

  def _check_disk(self) -> None:
    """Refuses a workdir this process cannot write to, or whose disk cannot hold the
    run's experts, checkpoints and exports: before any expert, prior or step."""
    config, d, p = self.config, self.config.distill, self.prepared
    disk.check_writable(self.workdir)
    images = (p.num_classes * d.ipc * int(np.prod(p.x_train.shape[1:])) * 4
              * (2 if d.img_momentum else 1))
    decoded = self.config.idc.factor ** 2 if d.method == "idc" else 1
    needs = {"checkpoints": (d.keep_checkpoints + 1) * images,
             "exports": 3 * images * decoded}
    if d.method == "mtt":
      needs["experts"] = expert_train.disk_needs(
          config, expert_train.expert_dir(config, self.workdir), disk.tree_bytes(self.abstract))
    disk.check_space(self.workdir, needs, "--workdir",
                     "free space, choose a --workdir on a larger disk, or lower "
                     "expert.num_experts / distill.keep_checkpoints")

  def _prepare_trajectories(self) -> None:
    """MTT: experts (trained if missing), their snapshots, the compiled unroll step."""
    config, d = self.config, self.config.distill
    if not self.plan_only:
      warm = getattr(self.stage, "warm_start", None)
      several = jax.process_count() > 1   # processes would race to train the experts
      expert_dir = (expert_train.expert_dir(config, self.workdir) if several else
                    expert_train.train_experts(config, self.workdir, self.prepared,
                                               warm_start=warm))
      require(os.path.isdir(expert_dir), "expert.dir", f"{expert_dir} does not exist, "
              "and a multi-process run does not train experts",
              "train them first with python -m dd_jax.experts and the same config")
      self.reader = store.ExpertReader(
          expert_dir, expert_train.stored_spec(config, self.workdir, self.prepared, warm))
      require(bool(self.reader.experts) and (not several or len(self.reader.experts)
                                             >= config.expert.num_experts),
              "expert.dir", f"{expert_dir} has {len(self.reader.experts)} of "
              f"{config.expert.num_experts} complete experts",
              "finish training experts (python -m dd_jax.experts)")
      # The reader's spec check pins reader.epochs to expert.epochs, so validate()'s
      # window check already covers the stored trajectories.
      self.source = segments.SnapshotSource(self.reader, self.abstract,
                                            int(d.snapshot_cache_mb * 2 ** 20))
    self.window = segments.StartWindow.from_config(d)
    # Everything the step reads besides the segments, once, replicated over the mesh.
    self.batch_stats, self.mask, self.frozen, self.prior = self.placement.put(
        (self.batch_stats, self.mask, self.frozen, self.prior),
        self.placement.replicated)
    self.step_fn = compiled_step(self.model, StepSettings.from_config(d), self.space,
                                 self.latent_tx, self.placement)

  def _prepare_matching(self) -> None:
    """DC/DM/IDC: no experts; real batches per class (PAD's scheduled windows with FIEX
    for DC/DM)."""
    config, d, p = self.config, self.config.distill, self.prepared
    self.x_train = jax.device_put(jnp.asarray(p.x_train), jax.devices()[0])
    if d.method == "idc":
      self.idc_frozen = None   # SeqMatch's earlier subsets, class grouped
      if self.frozen is not None:
        order = np.argsort(np.asarray(self.frozen[1]), kind="stable")
        self.idc_frozen = jnp.asarray(np.asarray(self.frozen[0])[order])
      earlier = 0 if self.idc_frozen is None else len(self.idc_frozen) // p.num_classes
      self.idc = idc.IDCSettings.from_config(config, p.num_classes, p.pre, earlier)
      self.real = idc.RealIndices(p.y_train, p.num_classes, self.idc, config.seed)
      self.step_fn = idc.compiled_step(self.model, self.idc)
      warm = getattr(self.stage, "warm_start", None)
      self.net_init = (idc.NetInit(self.model, self.x_train[:1], config.idc.fix_iter,
                                   config.seed, self.step_offset, warm)
                       if idc.NetInit.needed(config.idc.fix_iter, warm) else None)
      self.y_train = jax.device_put(jnp.asarray(p.y_train, jnp.int32), jax.devices()[0])
      return
    ranked, schedule = None, None
    if config.expert.data_schedule != "none":
      ranked = expert_train.data_ranking(config, self.workdir, p)[0]
      schedule = schedule_lib.from_config(config.expert)
    self.real = backbones.RealBatches(p.y_train, p.num_classes, d.batch_real, config.seed,
                                      ranked, schedule, d.schedule_steps)
    blocks = (matching.kept_blocks(self.mask, config.model.depth)
              if d.method == "dm" else ())
    self.matching = backbones.MatchingSettings.from_config(d, p.num_classes, blocks)
    self.step_fn = backbones.compiled_step(self.model, self.matching, self.space,
                                           self.latent_tx)

  def _step(self, state, step: int):
    """One outer step of the configured method: (state, metrics, where it matched)."""
    d = self.config.distill
    if d.method == "mtt":
      return self._match_step(state, step)
    if d.method == "idc":
      real_idx, net_idx = self.real.indices(step)
      init = self.net_init(step) if self.net_init else None
      state, metrics = self.step_fn(state, self.x_train, self.y_train,
                                    jnp.asarray(real_idx), jnp.asarray(net_idx),
                                    self.idc_frozen, init)
      faults.point("distill.step")
      return state, jax.device_get(metrics), f"{d.method} step {step}"
    idx = jnp.asarray(self.real.indices(step, self.matching.outer_loop))
    state, metrics = self.step_fn(state, self.x_train, idx, self.mask, self.prior)
    faults.point("distill.step")   # dispatched, still computing
    return state, jax.device_get(metrics), f"{d.method} step {step}"

  def _match_step(self, state, step: int):
    """MTT's outer step: sample distill.experts_per_step segments, place their
    snapshots on the mesh (stacked along the expert axis when there are several)."""
    d, put = self.config.distill, self.placement.put
    segs = segments.sample_segments(self.config.seed, self.step_offset + step,
                                    self.reader.experts, self.window, d.experts_per_step)
    between = tuple(range(1, d.expert_epochs)) if d.intermediate != "none" else ()
    if d.experts_per_step == 1:
      (expert, epoch), = segs
      start, target = self.source.segment(expert, epoch, d.expert_epochs)
      middles = [self.source.get(expert, epoch + k) for k in between] or None
      scale, sharding = balance_scale(d, epoch), self.placement.replicated
    else:
      snaps = self.source.stacked(segs, (0, d.expert_epochs) + between)
      start, target, middles = snaps[0], snaps[1], snaps[2:] or None
      scales = [balance_scale(d, epoch) for _, epoch in segs]
      scale = None if scales[0] is None else np.stack(scales)
      sharding = self.placement.per_expert
    state, metrics = self.step_fn(state, put(start, sharding), put(target, sharding),
                                  self.batch_stats, self.mask, put(middles, sharding),
                                  put(scale, sharding), self.frozen, self.prior)
    where = "; ".join(f"expert {e}, start epoch {t}" for e, t in segs)
    faults.point("distill.step")   # dispatched, still computing
    return state, jax.device_get(metrics), where

  def memory_plan(self) -> plan.MemoryPlan:
    """The run's memory per device (dd_jax.plan): the outer step and the evaluation
    compiled for this config's shapes, nothing executed."""
    config, d, p = self.config, self.config.distill, self.prepared
    require(d.method == "mtt", "distill.method", f"the memory plan covers trajectory "
            f"matching, not {d.method}", "use distill.method='mtt', or plan by a short run")
    pl = self.placement
    state = self.placement.put(self._state_like(), pl.replicated)
    e = d.experts_per_step
    where = pl.per_expert if e > 1 else pl.replicated
    snap = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
        ((e,) if e > 1 else ()) + x.shape, x.dtype, sharding=where), self.abstract)
    # As _match_step passes them (no snapshots in between: None), so that the run
    # steps with the very program planned here.
    middles = [snap] * (d.expert_epochs - 1) if d.intermediate != "none" else []
    middles = middles or None
    scale = (None if not d.balance_loss else
             jax.ShapeDtypeStruct((e,) if e > 1 else (), jnp.float32, sharding=where))
    step = plan.program_bytes(self.step_fn.lower(
        state, snap, snap, self.batch_stats, self.mask, middles, scale, self.frozen,
        self.prior).compile())
    n = p.num_classes * d.ipc + (0 if self.frozen is None else self.frozen[0].shape[0])
    images = jax.ShapeDtypeStruct((n,) + p.x_train.shape[1:], jnp.float32)
    labels = (jax.ShapeDtypeStruct((n, p.num_classes), jnp.float32) if d.soft_labels
              else jax.ShapeDtypeStruct((n,), jnp.int32))
    ev = config.eval
    evaluation = 0 if not d.eval_every else max(
        plan.program_bytes(program) for arch in ev.models
        for program in protocol.eval_programs(
            images, labels, p.x_test, p.y_test, num_classes=p.num_classes, arch=arch,
            model_config=config.model, epochs=ev.epochs, batch_size=ev.batch_size,
            momentum=ev.momentum, weight_decay=ev.weight_decay,
            dsa_strategy=ev.dsa_strategy, num_nets=ev.num_nets,
            chunk_epochs=ev.chunk_epochs, protocol=ev.protocol))
    size = disk.tree_bytes(self.abstract)
    touched = config.expert.num_experts * (d.max_start_epoch + d.expert_epochs)
    snapshots = min(int(d.snapshot_cache_mb * plan.MiB), touched * size)
    on_cpu = jax.local_devices()[0].platform == "cpu"
    if on_cpu:   # the run imports TensorFlow for its metric writer: count it now
      summaries.hide_accelerators_from_tensorflow()
    return plan.make_plan(plan.resident_bytes() if on_cpu else 0, snapshots, step,
                          evaluation, d.memory_limit_mb)

  def initial_state(self) -> state_lib.DistillState:
    d, seed = self.config.distill, self.config.seed
    if self.stage is not None:   # a SeqMatch subset's slice, an H-PD layer's latents
      images, labels = self.stage.initial(self)
    elif self.space is not None:   # GLaD: latents of the prior, classes grouped
      labels = np.repeat(np.arange(self.prepared.num_classes, dtype=np.int32), d.ipc)
      g = self.config.glad
      images = latent.initial_latents(self.space, self.prior[0],
                                      train_prior.prior_classes(self.config, labels), g.init,
                                      seed, g.average_samples, g.clip)
    else:
      images, labels = self.initial_set(d)
    state = state_lib.create(d, images, labels, seed, self.latent_tx)
    if self.stage is not None:
      state = state.replace(rng=jax.random.fold_in(state.rng, 1000 + self.stage.index))
    return state

  def initial_set(self, d) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels before step 0 for the `distill` section `d` (SeqMatch asks
    for the whole IPC once and slices it into subsets)."""
    p, seed = self.prepared, self.config.seed

    def plain():
      if d.method == "idc":   # IDC's "mix": ipc x factor^2 real images shrunk into tiles
        return idc.mix_init(p.x_train, p.y_train, p.num_classes, d.ipc,
                            self.config.idc.factor, seed)
      return state_lib.initial_images(p.x_train, p.y_train, p.num_classes, d.ipc,
                                      d.pix_init, seed)

    if not labels_lib.needs_label_experts(d):
      images, labels = plain()
    else:
      epoch = labels_lib.label_epoch(d, self.reader.epochs)
      experts = self.reader.experts[:d.label_experts or None]
      snapshots = [self.reader.params(e, epoch, self.abstract) for e in experts]
      if d.pix_init == "kmeans":   # AST: from the first label expert's features
        def plain():
          return representative.initial_images(
              self.model, snapshots[0], p.x_train, p.y_train, p.num_classes, d.ipc,
              d.kmeans_clusters, d.kmeans_features, seed)
      images, labels = labels_lib.initial_set(d, self.model, snapshots, p.x_train,
                                              p.y_train, p.num_classes, seed, plain)
    return images, labels

  def _state_like(self) -> state_lib.DistillState:
    """A state of the run's structure (zeros): the restore target of a checkpoint."""
    d, p = self.config.distill, self.prepared
    n = p.num_classes * d.ipc
    labels = (np.zeros((n, p.num_classes), np.float32) if d.soft_labels
              else np.zeros((n,), np.int32))
    images = np.zeros((n,) + p.x_train.shape[1:], np.float32)
    if self.space is not None:
      gen = self.space.gen
      images = {"ws": np.zeros((n, gen.num_ws, gen.spec["w_dim"]), np.float32),
                "f": np.zeros((n,) + gen.f_shape(self.glad_layer), np.float32)}
    return state_lib.create(d, images, labels, self.config.seed, self.latent_tx)

  def syn_lr(self, state) -> float:
    return float(state_lib.param_to_lr(state.lr_param, self.config.distill.syn_lr_param))

  def synset(self, state) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic set so far: with SeqMatch, the frozen subsets and this one."""
    if self.space is not None:
      images = np.asarray(self._render(self.prior[0], self.prior[1], state.images))
    else:
      images = np.asarray(state.images)
    labels = np.asarray(state.labels)
    if self.config.distill.method == "idc":   # decoded, subset after subset (SeqMatch)
      parts = [(e.images, e.labels) for e in self.stage.earlier] if self.stage else []
      decoded = [self.decode_set(*part) for part in parts + [(images, labels)]]
      return (np.concatenate([x for x, _ in decoded]),
              np.concatenate([y for _, y in decoded]))
    return self.stage.union(images, labels) if self.stage else (images, labels)

  def decode_set(self, images, labels) -> tuple[np.ndarray, np.ndarray]:
    """The images a net trains on: IDC's stored images decoded (factor^2 each), the
    others as they are."""
    if self.config.distill.method != "idc":
      return np.asarray(images), np.asarray(labels)
    return multiformation.decode_set(images, labels, self.config.idc.factor)

  def evaluate(self, state, writer) -> dict:
    """The evaluation protocol on the current set (with SeqMatch also the sequential
    one over the subsets); logs, records and exports it."""
    ev, p = self.config.eval, self.prepared
    started = time.perf_counter()
    step, lr = int(state.step), self.syn_lr(state)
    images, labels = self.synset(state)
    record = {"step": step, "global_step": self.step_offset + step, "lr": lr}
    settings = dict(num_classes=p.num_classes, model_config=self.config.model,
                    **protocol.settings(ev))
    for arch in ev.models:
      result = protocol.evaluate_synset(images, labels, p.x_test, p.y_test, arch=arch,
                                        lr=lr, **settings)
      logging.info("%sstep %d eval %s", self._where(), step, result.summary())
      record[arch] = {"mean": result.mean, "std": result.std,
                      "accuracies": result.accuracies.tolist(),
                      "seconds": round(result.seconds, 3)}
      faults.point("distill.evaluate")
      scalars = {f"eval/{arch}/accuracy": result.mean, f"eval/{arch}/std": result.std}
      if self.stage is not None and self.stage.sequential:
        seq = protocol.evaluate_sequential(
            [(*self.decode_set(x, y), r)
             for x, y, r in self.stage.sequence(state.images, state.labels, lr)],
            p.x_test, p.y_test,
            arch=arch, **settings)
        logging.info("%sstep %d sequential eval %s", self._where(), step, seq.summary())
        record[arch]["sequential"] = {"mean": seq.mean, "std": seq.std,
                                      "accuracies": seq.accuracies.tolist(),
                                      "stage_means": list(seq.stage_means)}
        scalars.update({f"eval/{arch}/sequential": seq.mean})
      writer.write_scalars(self.step_offset + step, scalars)
    self.evals = [e for e in self.evals if e["step"] != step] + [record]
    if distributed.is_primary():
      write_json_atomic(self.evals_path, self.evals)
    self.export(state, writer)
    self.eval_seconds += time.perf_counter() - started
    return record

  def export(self, state, writer) -> dict[str, str]:
    p = self.prepared
    prefix = os.path.join(self.workdir, "synset")
    meta = {"step": int(state.step), "data": p.describe(),
            "config": self.identity["config"],
            "evals": self.evals[-1:] if self.evals else []}
    images, labels = self.synset(state)
    if self.stage is not None:   # SeqMatch's subsets and lrs, H-PD's layer
      meta.update(self.stage.export_meta(self.syn_lr(state)))
      if self.config.distill.method == "idc" and "seqmatch" in meta:   # decoded rows
        meta["seqmatch"]["subsets"] = [n * self.config.idc.factor ** 2
                                       for n in meta["seqmatch"]["subsets"]]
    pixels = p.pre.invert(images)
    if not distributed.is_primary():   # process 0 writes; the others know the names
      self.exported, self.exported_step = export.synset_paths(prefix), int(state.step)
      return self.exported
    paths = export.save_synset(prefix, images, labels,
                               self.syn_lr(state), p.pre, p.num_classes, meta, pixels)
    if self.space is not None:   # GLaD: the latents the images are rendered from
      write_npz_atomic(os.path.join(self.workdir, "latents.npz"),
                       **{k: np.asarray(v) for k, v in state.images.items()},
                       layer=np.int32(self.glad_layer))
    grid = export.class_grid(pixels, labels, p.num_classes)
    writer.write_images(self.step_offset + int(state.step), {"synthetic": grid[None]})
    self.exported, self.exported_step = paths, int(state.step)
    return paths

  def run(self) -> str:
    d = self.config.distill
    recorded = os.path.exists(os.path.join(self.run_dir, "run.json"))
    # A new run builds its initial set first: the data may refuse it (too few images
    # per class), which must leave the workdir free for a corrected config.
    state = None if recorded else self.initial_state()
    if d.method == "mtt" and d.memory_limit_mb >= 0:   # refused before anything is written
      memory = self.memory_plan()
      logging.info("%s", memory.summary())
      plan.check(memory, d)
    record_workdir(self.run_dir, self.identity, self.config)
    manager = _checkpoint_manager(self.run_dir, d.keep_checkpoints)
    latest = manager.latest_step()
    # Where the state lives: replicated over the mesh (MTT), or on the first device.
    # Committed like the step's outputs: otherwise the second call compiles again.
    where = (self.placement.replicated if self.placement
             else jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    if latest is not None:
      # Orbax reads the arrays straight onto `where`, whatever mesh or number of
      # processes wrote them; the target needs shapes only (no K-Means, no experts).
      target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=where),
                            self._state_like())
      state = _restore(manager, latest, target, self.run_dir)
      logging.info("resuming distillation from step %d", latest)
    elif state is None:
      state = self.initial_state()
    state = (self.placement.put(state, where) if self.placement
             else jax.device_put(state, where))
    if latest is None:
      faults.point("distill.start")
    writer = summaries.create_writer(self.workdir)
    writer.write_hparams({k: v for k, v in d.items() if isinstance(v, (int, float, str))})
    start_step, start_time, bad = int(state.step), time.perf_counter(), 0
    last_log = start_time
    self.eval_seconds = 0.0
    try:
      if start_step == 0 and self.stage is not None:
        self.stage.after_step(self, state, 0)   # H-PD scores a space's start too
      for step in range(start_step, d.iterations):
        if d.eval_every and step % d.eval_every == 0 and not self._evaluated(step):
          self.evaluate(state, writer)
        state, metrics, where = self._step(state, step)
        if not metrics["finite"]:
          bad += 1
          logging.warning("step %d: matching loss, gradients or update not finite (%s): "
                          "step rolled back; updates now scaled by %.3g "
                          "(distill.nonfinite_lr_factor=%g)", step, where,
                          metrics["update_scale"], d.nonfinite_lr_factor)
          if bad >= d.max_bad_steps:
            _save(manager, state)
            raise ConfigError(
                "distill.lr_img", f"{bad} consecutive steps had a non-finite loss or "
                f"gradient (last good synthetic set kept, checkpoint at step {step + 1})",
                "lower distill.lr_img or distill.lr_lr, or check the experts")
        else:
          bad = 0
        if metrics.get("skipped"):
          logging.info("step %d: loss %.4f > distill.loss_threshold=%g, update skipped "
                       "(%s)", step, metrics["loss"], d.loss_threshold, where)
        if metrics.get("lr_clamped"):
          logging.warning("step %d: the student lr reached distill.min_syn_lr=%g and was "
                          "held there", step, d.min_syn_lr)
        done = step + 1
        if self.stage is not None:
          self.stage.after_step(self, state, done, metrics)
        if (done % d.log_every == 0 or done == d.iterations
            or time.perf_counter() - last_log >= LOG_AT_LEAST_EVERY_S):
          self._log(writer, done, metrics, where, start_step, start_time)
          last_log = time.perf_counter()
        if done % d.checkpoint_every == 0:
          _save(manager, state)
      if d.eval_every and not self._evaluated(int(state.step)):
        self.evaluate(state, writer)
      _save(manager, state)
      paths = self.exported if self.exported_step == int(state.step) else self.export(
          state, writer)
      self.final_state = state
    except KeyboardInterrupt:
      logging.warning("interrupted: saving step %d so the run can resume", int(state.step))
      _save(manager, state)
      raise
    finally:
      manager.wait_until_finished()
      manager.close()
      writer.flush()
      if self.reader is not None:
        self.reader.close()
    return self._summary(state, paths)

  def _where(self) -> str:
    """'subset k/K ' in the logs of a SeqMatch subset's run."""
    return self.stage.label if self.stage else ""

  def _evaluated(self, step: int) -> bool:
    return any(e["step"] == step for e in self.evals)

  def _log(self, writer, done, metrics, where, start_step, start_time) -> None:
    d = self.config.distill
    scalars = {f"distill/{k}": float(v) for k, v in metrics.items()}
    writer.write_scalars(self.step_offset + done, scalars)
    elapsed = time.perf_counter() - start_time - self.eval_seconds
    rate = (done - start_step) / max(elapsed, 1e-9)
    inner = (f", inner CE {metrics['inner_loss_first']:.3f} -> "
             f"{metrics['inner_loss_last']:.3f}" if "inner_loss_first" in metrics else "")
    logging.info(self._where() + "step %d/%d: loss %.4f, syn_lr %.5f%s (%s), %.2f steps/s, ETA %.0fs", done,
                 d.iterations, metrics["loss"], metrics.get("syn_lr", d.lr_teacher), inner, where, rate,
                 (d.iterations - done) / max(rate, 1e-9))

  def _summary(self, state, paths) -> str:
    lines = [f"{self._where()}distilled {int(state.step)} steps; student lr "
             f"{self.syn_lr(state):.5f}",
             f"synthetic set: {paths['npz']} (+ .json, .png)"]
    if self.evals:
      last = self.evals[-1]
      for arch in self.config.eval.models:
        if arch in last:
          lines.append(f"{arch} at step {last['step']}: {100 * last[arch]['mean']:.2f} +- "
                       f"{100 * last[arch]['std']:.2f}%")
          seq = last[arch].get("sequential")
          if seq:
            lines.append(f"{arch} sequential (S1, S1+S2, ...): {100 * seq['mean']:.2f} +- "
                         f"{100 * seq['std']:.2f}%")
    return "\n".join(lines)


def distill(config: ml_collections.ConfigDict, workdir: str,
            prepared: pipeline.Prepared | None = None) -> str:
  """Trains missing experts, distils (resuming if the workdir has a checkpoint),
  evaluates and exports. Returns a short summary. With `seqmatch.subsets`, the subsets
  one after another (distill/seqmatch.py)."""
  from dd_jax.distill import seqmatch
  if jax.process_count() > 1:
    staged = seqmatch.enabled(config) or config.distill.parameterization == "hpd"
    require(config.distill.method == "mtt" and not staged, "distributed.num_processes",
            f"{jax.process_count()} processes: multi-process runs cover trajectory "
            "matching (pixels or GLaD), not SeqMatch, H-PD, DC or DM yet",
            "run it in one process (its devices still share the work through `mesh`)")
  if seqmatch.enabled(config):
    summary = seqmatch.SequentialDistiller(config, workdir, prepared).run()
  elif config.distill.parameterization == "hpd":
    from dd_jax.distill import hpd
    summary = hpd.ProgressiveDistiller(config, workdir, prepared).run()
  else:
    summary = Distiller(config, workdir, prepared).run()
  return summary + _write_report(workdir)


def _write_report(workdir: str) -> str:
  """The run report (dd_jax.report) on process 0: a line for the summary. The
  distilled set is already written, so a report that fails is a warning."""
  if not distributed.is_primary():
    return ""
  try:
    return f"\nreport: {report.write_report(workdir)}"
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("the run report was not written (%s: %s); the run's files are "
                    "complete: try python -m dd_jax.report --workdir=%s",
                    type(e).__name__, e, workdir)
    return ""
