"""One outer distillation step: unroll the student from an expert snapshot, match the
later snapshot, update images and lr with optax.

A step whose loss, gradients or updated images / lr / labels are not finite changes
nothing but the step counter, the rng and the update scale (the state rolls back inside
the compiled step; every later update is scaled by `nonfinite_lr_factor` once more); the
loop counts such steps, logs a warning, and stops with a clear error when they keep
coming. With DATM's
`loss_threshold`, a step whose loss exceeds it is skipped the same way (not an error).
With soft labels, the label logits get their own SGD update from the same loss.

AST's refinements are switches of the same step: the student starts from a perturbed
expert (`perturb_rho`), trains with heavy-ball momentum (`inner_momentum`) on a CE scaled
by the balanced-loss factor of its start epoch (an argument, `loss_scale`), and is also
matched at the intermediate expert epochs (`intermediate`, snapshots passed as
`middles`), all inside the one compiled unroll.

SeqMatch's earlier subsets enter as `frozen` (images, labels): arguments of the step,
drawn into the inner batches with the current subset, never updated.

With `formation_factor` f > 1 (IDC's multi-formation under MTT), the stored images are
decoded to f^2 as many inside the step (distill/multiformation.py, differentiable), and
the unroll, its batches (`batch_syn` counts decoded images) and DSA work on those.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dd_jax import losses, training
from dd_jax.data import augment
from dd_jax.distill import multiformation
from dd_jax.distill.guard import all_finite, keep_if
from dd_jax.distill.state import (DistillState, after_step, label_optimizer, optimizers,
                                  param_to_lr, scaled)

Params = Any
Mask = Any


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """The static (compile-time) settings of a step, read from the `distill` section."""
  syn_steps: int
  batch_syn: int            # 0 = the whole synthetic set per inner step
  dsa_strategy: str
  remat: bool
  remat_policy: str         # what the rematerialised unroll keeps (losses.REMAT_POLICIES)
  syn_lr_param: str
  min_syn_lr: float
  lr_img: float
  img_momentum: float
  lr_lr: float
  lr_momentum: float
  param_mask: str           # "loss": PAD's loss-ranked mask, built inside the step
  param_mask_ratio: float
  soft_labels: bool         # DATM: labels are logits, optimised with the images
  lr_y: float
  label_momentum: float
  loss_threshold: float     # DATM: no update when the loss exceeds it (0 = always update)
  expert_epochs: int        # M (AST's intermediate points need it)
  inner_momentum: float     # AST code: heavy-ball momentum of the student (0 = SGD)
  intermediate: str         # AST: none | equal | proportional weights of the k < M matches
  nonfinite_lr_factor: float   # update scale x this after a non-finite (rolled-back) step
  perturb_rho: float        # AST: weight perturbation of the start (0 = off)
  perturb_style: str        # filter (paper) | tensor (official code)
  perturb_normaliser: str   # perturbed (paper Eq. 22-23, code) | expert (unperturbed)
  experts_per_step: int     # segments matched per outer step (vmapped, loss averaged)
  formation_factor: int     # multi-formation: the unroll trains on the decoded set (1 = off)

  @classmethod
  def from_config(cls, d) -> "StepSettings":
    return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


class Segment(NamedTuple):
  """What one outer step matches, drawn anew each step: the student starts at `start`
  (expert epoch t) and is matched to `target` (epoch t+M); AST's `middles` (epochs
  t+1..t+M-1) and balanced-loss `loss_scale` when those switches are on. With
  experts_per_step E > 1, every leaf carries a leading [E] axis."""
  start: Params
  target: Params
  middles: list[Params] | None = None
  loss_scale: Any = None


class Fixed(NamedTuple):
  """What stays the same over a run: the experts' BatchNorm statistics, PAD's parameter
  mask, SeqMatch's frozen earlier subsets (images, labels), GLaD's prior (generator
  params, preprocessing arrays)."""
  batch_stats: Params = None
  mask: Mask | None = None
  frozen: Any = None
  prior: Any = None


def meta_loss(model: nn.Module, settings: StepSettings, images, lr, labels,
              start: Params, target: Params, batch_stats: Params, key,
              mask: Mask | None = None, middles: list[Params] | None = None,
              loss_scale=None, frozen=None, constrain=None):
  """The trajectory-matching loss of one unroll, and the [N] inner losses.

  Args:
    images, labels: the synthetic set; lr: the (positive) student lr.
    start, target: expert snapshots at epochs t and t + M.
    batch_stats: running statistics for nets with batch norm (unused in train mode,
      but the module needs them); {} otherwise.
    key: PRNG key for the batch order and DSA (and the weight perturbation).
    middles: expert snapshots at t + 1 .. t + M - 1 (AST's intermediate matching).
    loss_scale: scalar factor of the student's CE (AST's balanced loss); None = 1.
    frozen: (images, labels) of SeqMatch's earlier subsets: they join the pool the
      inner batches are drawn from (frozen first), but get no gradient.
  Returns:
    (loss, [N] inner CE values without the loss scale).
  """
  if frozen is not None:
    images = jnp.concatenate([jax.lax.stop_gradient(frozen[0]), images])
    labels = jnp.concatenate([jax.lax.stop_gradient(frozen[1]), labels])
  n = images.shape[0]
  kplan, kaug = jax.random.split(key)
  batch = min(settings.batch_syn or n, n)   # as torch.split: a batch never exceeds the set
  idx, valid = losses.batch_schedule(kplan, n, batch, settings.syn_steps)
  keys = jax.random.split(kaug, settings.syn_steps)
  scale = 1.0 if loss_scale is None else loss_scale

  def per_sample_loss(params, x, y):
    logits, _ = training.apply(model, params, batch_stats, x, train=True)
    return training.cross_entropy(logits, y) * scale

  aug = (functools.partial(augment.dsa, strategy=settings.dsa_strategy)
         if augment.enabled(settings.dsa_strategy) else None)
  student = start
  if settings.perturb_rho:
    student = losses.perturb_weights(jax.random.fold_in(key, 2), start,
                                     settings.perturb_rho, settings.perturb_style)
  at = (losses.intermediate_steps(settings.syn_steps, settings.expert_epochs)
        if settings.intermediate != "none" else ())
  end, inner, students = losses.unroll_with_snapshots(
      per_sample_loss, student, lr, images, labels, idx, valid if n % batch else None,
      keys, at=at, augment=aug, remat=settings.remat,
      remat_policy=losses.remat_policy(settings.remat_policy),
      momentum=settings.inner_momentum, constrain=constrain)
  if settings.param_mask == "loss":
    mask = losses.loss_ranked_mask(end, target, settings.param_mask_ratio)
  # AST: the distances are normalised by the start the student left from, theta*_t
  # after the perturbation (its Eq. 22-23, Algorithm 2); "expert": the unperturbed one.
  origin = student if settings.perturb_normaliser == "perturbed" else start
  loss = losses.trajectory_matching_loss(end, target, origin, mask)
  if at:
    weights = losses.intermediate_weights(settings.expert_epochs, settings.intermediate)
    loss = loss + losses.intermediate_matching_loss(students, middles, origin, weights, mask)
  return loss, inner / scale


@functools.lru_cache(maxsize=16)
def compiled_step(model: nn.Module, settings: StepSettings, space=None, latent_tx=None,
                  placement=None):
  """`make_step` jitted, once per (model, settings, latent space, placement) in a
  process. With a `sharding.Placement`, the state comes back replicated over its mesh
  (the inputs arrive placed: `Placement.put`)."""
  step = make_step(model, settings, space, latent_tx, placement)
  if placement is None:
    return jax.jit(step)
  return jax.jit(step, out_shardings=placement.replicated)


def make_step(model: nn.Module, settings: StepSettings, space=None, latent_tx=None,
              placement=None):
  """Returns step(state, segment: Segment, fixed: Fixed) -> (state, metrics); see
  `meta_loss` for what the fields mean.

  With `settings.experts_per_step` E > 1, start, target, the middles and loss_scale
  carry a leading [E] axis (one expert segment each): the E unrolls are split over the
  mesh's expert axis (with a `placement`) and run one after another on each device,
  each with its own batch order and augmentation; the matching loss is their mean.

  With a `latent.LatentSpace` (GLaD), state.images are latents: they are rendered with
  prior = (generator params, preprocessing arrays), and the images' gradient is pulled
  back through the generator with jax.vjp; `latent_tx` updates them.

  The step, in named parts: the objective (`objective`), its gradients with respect to
  the images, the lr and DATM's labels (`outer_gradients`), the optimiser updates
  (`updated_values`), then the guard: a non-finite step rolls back, DATM's threshold
  skips, the linear lr is clamped (`guarded`)."""
  img_tx, lr_tx = optimizers(settings)
  txs = (latent_tx or img_tx, lr_tx, label_optimizer(settings))
  constrain = placement.batch if placement is not None else None

  def step(state: DistillState, segment: Segment, fixed: Fixed = Fixed()):
    key, rng = jax.random.split(state.rng)
    fn = objective(model, settings, (*segment, key), fixed.batch_stats, fixed.mask,
                   fixed.frozen, constrain, placement)
    loss, inner, grads, raw = outer_gradients(fn, state, settings.soft_labels, space,
                                              fixed.prior)
    updated = updated_values(state, grads, txs, settings.soft_labels)
    return guarded(state, updated, loss, inner, grads, raw, rng, settings)

  return step


def objective(model: nn.Module, settings: StepSettings, segment, batch_stats, mask, frozen,
              constrain, placement):
  """(images, lr_param, labels) -> (matching loss, [N] inner losses) of the segment
  (start, target, middles, loss_scale, key); with E > 1 segments, their mean."""

  def one(start, target, middles, loss_scale, key, images, lr, labels):
    return meta_loss(model, settings, images, lr, labels, start, target,
                     batch_stats, key, mask, middles, loss_scale, frozen, constrain)

  def fn(images, lr_param, labels):
    lr = param_to_lr(lr_param, settings.syn_lr_param)
    if settings.formation_factor > 1:   # IDC's parameterisation: the gradient reaches the tiles
      images = multiformation.decode(images, settings.formation_factor)
      labels = multiformation.decode_labels(labels, settings.formation_factor)
    if settings.experts_per_step == 1:
      return one(*segment, images, lr, labels)
    # [E] segments -> [devices on the expert axis, E / devices]: vmapped (and split)
    # over the first, one after another on each device over the second. A vmap over
    # all E on one device costs 5.4x one segment at E = 4 on CPU (lax.map: 4x) and
    # holds E unrolls at once.
    e = settings.experts_per_step
    groups = placement.experts if placement is not None else 1
    start, target, middles, loss_scale, key = segment
    segs = (start, target, middles, loss_scale, jax.random.split(key, e))
    segs = jax.tree.map(lambda x: x.reshape((groups, e // groups) + x.shape[1:]), segs)

    def on_device(group):
      return jax.lax.map(lambda s: one(*s, images, lr, labels), group)

    loss, inner = jax.vmap(on_device,
                           spmd_axis_name="experts" if placement else None)(segs)
    return jnp.mean(loss), jnp.mean(inner, axis=(0, 1))

  return fn


def outer_gradients(fn, state: DistillState, soft: bool, space=None, prior=None):
  """(loss, inner losses, gradients, raw gradients) of `objective` with respect to the
  images (GLaD: the latents, through the generator's pullback; the raw ones are the
  rendered images'), the lr and, with soft labels, the labels."""
  images, pullback = state.images, None
  if space is not None:   # GLaD: render the latents, keep the generator's pullback
    images, pullback = jax.vjp(lambda z: space.render(prior[0], prior[1], z),
                               state.images)
  (loss, inner), grads = jax.value_and_grad(
      fn, argnums=(0, 1, 2) if soft else (0, 1), has_aux=True)(
          images, state.lr_param, state.labels)
  raw = grads
  if pullback is not None:
    grads = (pullback(grads[0])[0],) + tuple(grads[1:])
  return loss, inner, grads, raw


def updated_values(state: DistillState, grads, txs, soft: bool) -> dict:
  """The optimisers' new images, lr (and labels), scaled by the state's update scale."""
  img_tx, lr_tx, label_tx = txs
  scale = state.update_scale
  upd, img_opt = img_tx.update(grads[0], state.img_opt, state.images)
  images = optax.apply_updates(state.images, scaled(upd, scale))
  upd, lr_opt = lr_tx.update(grads[1], state.lr_opt, state.lr_param)
  lr_param = optax.apply_updates(state.lr_param, scaled(upd, scale))
  updated = dict(images=images, img_opt=img_opt, lr_param=lr_param, lr_opt=lr_opt)
  if soft:
    upd, label_opt = label_tx.update(grads[2], state.label_opt, state.labels)
    updated.update(labels=optax.apply_updates(state.labels, scaled(upd, scale)),
                   label_opt=label_opt)
  return updated


def guarded(state: DistillState, updated: dict, loss, inner, grads, raw, rng,
            settings: StepSettings):
  """The next state and the step's metrics: `updated` unless the step is non-finite
  (rolled back) or above DATM's loss threshold (skipped); the linear lr clamped."""
  soft = settings.soft_labels
  finite = jnp.isfinite(loss) & all_finite((raw, updated["images"],
                                             updated["lr_param"], updated["labels"]
                                             if soft else ()))
  clamped = jnp.zeros((), bool)
  if settings.syn_lr_param == "linear":   # the official code lets lr go <= 0 or NaN
    clamped = updated["lr_param"] < settings.min_syn_lr
    updated["lr_param"] = jnp.maximum(updated["lr_param"], settings.min_syn_lr)
  skipped = (loss > settings.loss_threshold if settings.loss_threshold > 0
             else jnp.zeros((), bool))
  apply = finite & ~skipped
  kept = keep_if(apply, state.replace(**updated), state)
  kept = kept.replace(step=state.step + 1, rng=rng,
                      update_scale=after_step(state, finite, settings.nonfinite_lr_factor))
  metrics = {"loss": loss, "finite": finite, "skipped": skipped & finite,
             "update_scale": kept.update_scale,
             "lr_clamped": clamped & apply,
             "syn_lr": param_to_lr(kept.lr_param, settings.syn_lr_param),
             "grad_norm_images": optax.tree.norm(grads[0]),
             "grad_lr": grads[1],
             "inner_loss_first": inner[0], "inner_loss_last": inner[-1]}
  if soft:
    metrics["grad_norm_labels"] = optax.tree.norm(grads[2])
  return kept, metrics
