"""Trajectory matching (MTT) and the switches on its step: DATM's soft labels and
correct init, PAD's parameter masks, AST's perturbed start, balanced loss, intermediate
matching and K-Means init, IDC's multi-formation (`distill.formation_factor`: stored
images decoded inside the step, exported and evaluated decoded; the step itself:
distill/step.py).

Before the first step: the experts (trained if missing, distill/../experts/train.py),
a reader of their snapshots, the start window and the compiled step, placed on the
run's mesh (dd_jax.sharding). Each outer step samples `distill.experts_per_step`
segments (expert, start epoch) from (seed, step), so a resumed run samples what an
uninterrupted one would.
"""
from __future__ import annotations

import os

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dd_jax import disk, faults, losses, memory, sharding, summaries
from dd_jax.distill import labels as labels_lib
from dd_jax.distill import idc, multiformation, representative, segments
from dd_jax.distill.methods import base
from dd_jax.distill.step import Fixed, Segment, StepSettings, compiled_step
from dd_jax.errors import require
from dd_jax.evaluate import protocol
from dd_jax.experts import store
from dd_jax.experts import train as expert_train


def validate(config: ml_collections.ConfigDict) -> None:
  """The start window against the experts, DATM's labels, AST's switches."""
  d = config.distill
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
  require(d.experts_per_step >= 1, "distill.experts_per_step", f"is {d.experts_per_step}",
          "use 1 (MTT) or more expert segments matched per step")
  require(d.expert_order in segments.EXPERT_ORDERS, "distill.expert_order",
          f"unknown {d.expert_order!r}",
          f"use one of {', '.join(segments.EXPERT_ORDERS)} ('draw': the papers' random "
          "expert per step; 'cycle': the official code's reshuffled rounds)")
  validate_ast(config)
  validate_formation(config)


def validate_formation(config: ml_collections.ConfigDict) -> None:
  """Multi-formation under MTT: pixels initialised from real images, hard labels, one
  subset (the decoded set is what the unroll trains on)."""
  d = config.distill
  if d.formation_factor == 1:
    return
  field = "distill.formation_factor"
  require(d.formation_factor > 1, field, f"is {d.formation_factor}",
          "use 1 (off) or a factor that divides the image size, e.g. 2")
  for on, what in ((d.pix_init != "real", f"pix_init={d.pix_init!r}"),
                   (d.soft_labels, "DATM's soft labels"),
                   (d.parameterization != "pixels", f"parameterization={d.parameterization!r}"),
                   (bool(config.seqmatch.subsets), "SeqMatch's subsets")):
    require(not on, field, f"is {d.formation_factor}, which does not combine with {what}",
            f"use formation_factor=1, or turn {what} off (multi-formation starts from "
            "IDC's mix of real images, with hard labels)")


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


class TrajectoryMatching(base.Method):
  """MTT's outer step from expert segments; the state replicated over the run's mesh."""
  name = "mtt"
  description = "trajectory matching (MTT)"
  uses_experts = True
  seqmatch = True
  multiprocess = True
  validate = staticmethod(validate)

  def __init__(self, ctx: base.RunContext, param: base.Parameterization):
    super().__init__(ctx, param)
    config, d = ctx.config, ctx.config.distill
    # Before any compute: the mesh decides where everything lives.
    self.placement = sharding.Placement.from_config(config, ctx.pool_size)
    logging.info("%s", sharding.describe(self.placement))
    self.state_sharding = self.placement.replicated
    self.reader = self.source = None
    if not ctx.plan_only:
      self._open_experts()
    self.window = segments.StartWindow.from_config(d)
    frozen = ctx.frozen
    frozen = None if frozen is None else (jnp.asarray(frozen[0], jnp.float32),
                                          jnp.asarray(frozen[1]))
    # Everything the step reads besides the segments, once, replicated over the mesh.
    self.fixed = self.placement.put(Fixed(ctx.batch_stats, ctx.mask, frozen, param.prior),
                                    self.placement.replicated)
    self.step_fn = compiled_step(ctx.model, StepSettings.from_config(d), param.space,
                                 param.latent_tx, self.placement)

  def _open_experts(self) -> None:
    """The experts (trained here if missing) and a cache of their snapshots."""
    ctx, config = self.ctx, self.ctx.config
    warm = ctx.warm_start
    several = jax.process_count() > 1   # processes would race to train the experts
    expert_dir = (expert_train.expert_dir(config, ctx.workdir) if several else
                  expert_train.train_experts(config, ctx.workdir, ctx.prepared,
                                             warm_start=warm))
    require(os.path.isdir(expert_dir), "expert.dir", f"{expert_dir} does not exist, "
            "and a multi-process run does not train experts",
            "train them first with python -m dd_jax.experts and the same config")
    self.reader = store.ExpertReader(
        expert_dir, expert_train.stored_spec(config, ctx.workdir, ctx.prepared, warm))
    require(bool(self.reader.experts) and (not several or len(self.reader.experts)
                                           >= config.expert.num_experts),
            "expert.dir", f"{expert_dir} has {len(self.reader.experts)} of "
            f"{config.expert.num_experts} complete experts",
            "finish training experts (python -m dd_jax.experts)")
    # The reader's spec check pins reader.epochs to expert.epochs, so validate()'s
    # window check already covers the stored trajectories.
    self.source = segments.SnapshotSource(self.reader, ctx.abstract,
                                          int(config.distill.snapshot_cache_mb * 2 ** 20))

  def put(self, state):
    return self.placement.put(state, self.placement.replicated)

  @staticmethod
  def validate_against_data(config: ml_collections.ConfigDict, image_shape) -> None:
    multiformation.check_factor(config.distill.formation_factor, image_shape,
                                "distill.formation_factor")

  @classmethod
  def images_per_stored(cls, config: ml_collections.ConfigDict) -> int:
    return config.distill.formation_factor ** 2

  @classmethod
  def decode(cls, config: ml_collections.ConfigDict, images, labels):
    """Multi-formation: the decoded set (factor^2 images per stored one)."""
    factor = config.distill.formation_factor
    if factor == 1:
      return super().decode(config, images, labels)
    return multiformation.decode_set(images, labels, factor)

  def initial_set(self, d) -> tuple[np.ndarray, np.ndarray]:
    """DATM's correct init and soft labels and AST's K-Means init read the label
    experts' snapshots; multi-formation starts from IDC's mix (ipc x factor^2 real
    images shrunk into tiles); otherwise the plain init."""
    if d.formation_factor > 1:
      p = self.ctx.prepared
      return idc.mix_init(p.x_train, p.y_train, p.num_classes, d.ipc, d.formation_factor,
                          self.ctx.config.seed)
    if not labels_lib.needs_label_experts(d):
      return super().initial_set(d)
    p, seed, model = self.ctx.prepared, self.ctx.config.seed, self.ctx.model
    epoch = labels_lib.label_epoch(d, self.reader.epochs)
    experts = self.reader.experts[:d.label_experts or None]
    snapshots = [self.reader.params(e, epoch, self.ctx.abstract) for e in experts]

    def plain():
      if d.pix_init == "kmeans":   # AST: from the first label expert's features
        return representative.initial_images(
            model, snapshots[0], p.x_train, p.y_train, p.num_classes, d.ipc,
            d.kmeans_clusters, d.kmeans_features, seed)
      return base.Method.initial_set(self, d)

    return labels_lib.initial_set(d, model, snapshots, p.x_train, p.y_train,
                                  p.num_classes, seed, plain)

  def step(self, state, step: int):
    """Samples distill.experts_per_step segments and places their snapshots on the
    mesh (stacked along the expert axis when there are several)."""
    d, put = self.ctx.config.distill, self.placement.put
    segs = segments.sample_segments(self.ctx.config.seed, self.ctx.stage.step_offset + step,
                                    self.reader.experts, self.window, d.experts_per_step,
                                    d.expert_order)
    between = tuple(range(1, d.expert_epochs)) if d.intermediate != "none" else ()
    if d.experts_per_step == 1:
      (expert, epoch), = segs
      start, target = self.source.segment(expert, epoch, d.expert_epochs)
      middles = [self.source.get(expert, epoch + k) for k in between] or None
      scale, where = balance_scale(d, epoch), self.placement.replicated
    else:
      snaps = self.source.stacked(segs, (0, d.expert_epochs) + between)
      start, target, middles = snaps[0], snaps[1], snaps[2:] or None
      scales = [balance_scale(d, epoch) for _, epoch in segs]
      scale = None if scales[0] is None else np.stack(scales)
      where = self.placement.per_expert
    segment = Segment(put(start, where), put(target, where), put(middles, where),
                      put(scale, where))
    state, metrics = self.step_fn(state, segment, self.fixed)
    label = "; ".join(f"expert {e}, start epoch {t}" for e, t in segs)
    faults.point("distill.step")   # dispatched, still computing
    return state, jax.device_get(metrics), label

  @classmethod
  def disk_needs(cls, ctx: base.RunContext) -> dict[str, int]:
    config = ctx.config
    return {"experts": expert_train.disk_needs(
        config, expert_train.expert_dir(config, ctx.workdir), disk.tree_bytes(ctx.abstract))}

  def memory_plan(self, state_like) -> memory.MemoryPlan:
    """The outer step and the evaluation compiled for this config's shapes (dd_jax.memory),
    nothing executed."""
    config, d, p, pl = self.ctx.config, self.ctx.config.distill, self.ctx.prepared, self.placement
    state = pl.put(state_like(), pl.replicated)
    e = d.experts_per_step
    where = pl.per_expert if e > 1 else pl.replicated
    snap = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
        ((e,) if e > 1 else ()) + x.shape, x.dtype, sharding=where), self.ctx.abstract)
    # As `step` passes them (no snapshots in between: None), so that the run steps with
    # the very program planned here.
    middles = [snap] * (d.expert_epochs - 1) if d.intermediate != "none" else []
    middles = middles or None
    scale = (None if not d.balance_loss else
             jax.ShapeDtypeStruct((e,) if e > 1 else (), jnp.float32, sharding=where))
    step = memory.program_bytes(self.step_fn.lower(
        state, Segment(snap, snap, middles, scale), self.fixed).compile())
    n = self.ctx.pool_size * self.images_per_stored(config)   # as the nets train on it
    images = jax.ShapeDtypeStruct((n,) + p.x_train.shape[1:], jnp.float32)
    labels = (jax.ShapeDtypeStruct((n, p.num_classes), jnp.float32) if d.soft_labels
              else jax.ShapeDtypeStruct((n,), jnp.int32))
    size = disk.tree_bytes(self.ctx.abstract)
    touched = config.expert.num_experts * (d.max_start_epoch + d.expert_epochs)
    snapshots = min(int(d.snapshot_cache_mb * memory.MiB), touched * size)
    on_cpu = jax.local_devices()[0].platform == "cpu"
    if on_cpu:   # the run imports TensorFlow for its metric writer: count it now
      summaries.hide_accelerators_from_tensorflow()
    return memory.make_plan(memory.resident_bytes() if on_cpu else 0, snapshots, step,
                            self._eval_bytes(images, labels), d.memory_limit_mb)

  def _eval_bytes(self, images, labels) -> int:
    """The largest evaluation program of the run's `eval.models` (0 without evaluation)."""
    config, p = self.ctx.config, self.ctx.prepared
    ev = config.eval
    if not config.distill.eval_every:
      return 0
    return max(memory.program_bytes(program) for arch in ev.models
               for program in protocol.eval_programs(
                   images, labels, p.x_test, p.y_test, num_classes=p.num_classes,
                   arch=arch, model_config=config.model, epochs=ev.epochs,
                   batch_size=ev.batch_size, momentum=ev.momentum,
                   weight_decay=ev.weight_decay, dsa_strategy=ev.dsa_strategy,
                   num_nets=ev.num_nets, chunk_epochs=ev.chunk_epochs,
                   protocol=ev.protocol))

  def expert_params(self):
    if self.reader is None:
      return None
    return self.reader.params(self.reader.experts[0], self.reader.epochs, self.ctx.abstract)

  def close(self) -> None:
    if self.reader is not None:
      self.reader.close()
