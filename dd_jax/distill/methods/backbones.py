"""The DC and DM outer steps (distill/matching.py's losses + optax) and their real batches.

One compiled step per outer iteration: a fresh net from the step's key, the method's
matching loss, SGD(lr_img, momentum) on the images; DC also trains the net between its
`outer_loop` matches (`inner_loop` steps of plain SGD at `distill.lr_teacher` on the
synthetic set, DSA on). Non-finite steps roll back inside the step, as MTT's.

Real batches: `batch_real` random images of each class per match, drawn on the host from
(seed, step) so a resumed run draws the same; with a data schedule (`expert.data_schedule`:
"prune", PAD's static removal for DC/DM, or "pad", the expert curriculum) only from each
class's scheduled window, the scheduler's epoch advancing every `distill.schedule_steps`
outer steps.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dd_jax import faults, training
from dd_jax.distill import matching
from dd_jax.distill.methods import base
from dd_jax.distill.guard import finish_step
from dd_jax.distill.state import DistillState, scaled
from dd_jax.errors import require, require_at_least
from dd_jax.experts import schedule as schedule_lib
from dd_jax.experts import train as expert_train
from dd_jax.experts.schedule import DataSchedule, StaticPrune

Params = Any
Mask = Any


@dataclasses.dataclass(frozen=True)
class MatchingSettings:
  method: str                # dc | dm
  num_classes: int
  ipc: int
  lr_img: float
  img_momentum: float
  dsa_strategy: str
  outer_loop: int            # DC: matches per outer step (1 for DM)
  inner_loop: int            # DC: net steps on the synthetic set between matches
  lr_net: float
  batch_train: int
  blocks: tuple[int, ...]    # DM: extra block outputs matched (PAD FIEM)
  nonfinite_lr_factor: float = 0.5   # update scale x this after a rolled-back step

  @classmethod
  def from_config(cls, d, num_classes: int, blocks: tuple[int, ...] = ()):
    outer, inner = dc_loops(d)
    return cls(method=d.method, num_classes=num_classes, ipc=d.ipc, lr_img=d.lr_img,
               img_momentum=d.img_momentum, dsa_strategy=d.dsa_strategy,
               outer_loop=outer if d.method == "dc" else 1, inner_loop=inner,
               lr_net=d.lr_teacher, batch_train=256, blocks=blocks,
               nonfinite_lr_factor=d.nonfinite_lr_factor)


def dc_loops(d) -> tuple[int, int]:
  """DC's (outer_loop, inner_loop): the config's, or the official values by IPC."""
  default = matching.DC_LOOPS.get(d.ipc, (10, 50))
  return d.dc_outer_loop or default[0], d.dc_inner_loop or default[1]


@functools.lru_cache(maxsize=8)
def compiled_step(model: nn.Module, settings: MatchingSettings, space=None, latent_tx=None):
  return jax.jit(make_step(model, settings, space, latent_tx))


def make_step(model: nn.Module, s: MatchingSettings, space=None, latent_tx=None):
  """Returns step(state, x_train, real_idx [outer_loop, C, B], mask, prior) -> (state,
  metrics). With a GLaD `space`, state.images are latents rendered with `prior` and
  updated by `latent_tx` through the generator's jax.vjp (see distill/latent.py)."""
  img_tx = latent_tx or optax.sgd(s.lr_img, momentum=s.img_momentum or None)
  net_epoch = training.make_train_epoch(model, optax.identity(), s.batch_train,
                                        s.dsa_strategy)

  def loss_fn(images, params, real, key, mask):
    syn = images.reshape((s.num_classes, s.ipc) + images.shape[1:])
    if s.method == "dc":
      return matching.dc_loss(model, params, real, syn, key, s.dsa_strategy, mask)
    return matching.dm_loss(model, params, real, syn, key, s.dsa_strategy, s.blocks)

  def step(state: DistillState, x_train, real_idx, mask: Mask | None = None, prior=None):
    key, rng = jax.random.split(state.rng)
    kinit, kloop = jax.random.split(key)
    net = training.init_state(model, kinit, x_train[:1], optax.identity())

    def render(images):
      return images if space is None else space.render(prior[0], prior[1], images)

    def match(carry, inputs):
      images, img_opt, net = carry
      idx, k, last = inputs
      kmatch, knet = jax.random.split(k)
      rendered, pullback = jax.vjp(render, images)
      loss, g = jax.value_and_grad(loss_fn)(rendered, net.params, x_train[idx], kmatch, mask)
      g = pullback(g)[0]
      upd, img_opt = img_tx.update(g, img_opt, images)
      images = optax.apply_updates(images, scaled(upd, state.update_scale))
      if s.method == "dc" and s.inner_loop:
        def train(net, k):
          net, _, _ = net_epoch(net, jnp.float32(s.lr_net),
                                jax.lax.stop_gradient(render(images)), state.labels, k)
          return net, None
        trained, _ = jax.lax.scan(train, net, jax.random.split(knet, s.inner_loop))
        net = jax.tree.map(lambda a, b: jnp.where(last, a, b), net, trained)
      return (images, img_opt, net), (loss, optax.tree.norm(g))

    last = jnp.arange(s.outer_loop) == s.outer_loop - 1   # no net training after the last
    (images, img_opt, _), (losses, norms) = jax.lax.scan(
        match, (state.images, state.img_opt, net),
        (real_idx, jax.random.split(kloop, s.outer_loop), last))
    return finish_step(state, images, img_opt, rng, losses, norms, s.nonfinite_lr_factor)

  return step


class RealBatches:
  """Per-class real batches for DC/DM: [outer_loop, C, batch_real] training indices."""

  def __init__(self, y_train: np.ndarray, num_classes: int, batch_real: int, seed: int,
               ranked: list[np.ndarray] | None = None,
               schedule: DataSchedule | StaticPrune | None = None,
               schedule_steps: int = 1):
    self.by_class = [np.flatnonzero(y_train == c) for c in range(num_classes)]
    self.batch, self.seed = batch_real, seed
    self.ranked, self.schedule, self.schedule_steps = ranked, schedule, schedule_steps

  def pool(self, step: int) -> list[np.ndarray]:
    if self.schedule is None:
      return self.by_class
    epoch = step // self.schedule_steps
    return [r[slice(*self.schedule.window(epoch, len(r)))] for r in self.ranked]

  def indices(self, step: int, outer_loop: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, step, 2])
    pool = self.pool(step)
    return np.stack([np.stack([rng.choice(p, self.batch, replace=len(p) < self.batch)
                               for p in pool]) for _ in range(outer_loop)])


def validate_matching(config) -> None:
  """DC/DM/IDC: what needs trajectories is refused; their own fields checked."""
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
  require(config.model.arch == "ConvNet" and config.model.norm != "batchnorm",
          "model.arch", f"{d.method} here matches the ConvNet family without batch norm "
          f"(got {config.model.arch}, norm {config.model.norm})",
          "use model.arch='ConvNet' with instancenorm or none")
  require_at_least(d, "distill", {"batch_real": 1, "dc_outer_loop": 0, "dc_inner_loop": 0,
                                  "schedule_steps": 1})


class GradientMatching(base.Method):
  """DC: a fresh net per outer step, its gradients on real and synthetic batches
  matched class by class, the net trained between matches."""
  name = "dc"
  description = "gradient matching (DC)"
  matched_blocks = False   # DM: the kept blocks' features are matched too

  def __init__(self, ctx: base.RunContext, param: base.Parameterization):
    super().__init__(ctx, param)
    config, d, p = ctx.config, ctx.config.distill, ctx.prepared
    self.x_train = jax.device_put(jnp.asarray(p.x_train), jax.devices()[0])
    ranked, schedule = None, None
    if config.expert.data_schedule != "none":
      ranked = expert_train.data_ranking(config, ctx.workdir, p)[0]
      schedule = schedule_lib.from_config(config.expert)
    self.real = RealBatches(p.y_train, p.num_classes, d.batch_real, config.seed,
                            ranked, schedule, d.schedule_steps)
    blocks = (matching.kept_blocks(ctx.mask, config.model.depth)
              if self.matched_blocks else ())
    self.matching = MatchingSettings.from_config(d, p.num_classes, blocks)
    self.mask, self.prior = ctx.mask, param.prior
    self.step_fn = compiled_step(ctx.model, self.matching, param.space, param.latent_tx)

  @staticmethod
  def validate(config) -> None:
    validate_matching(config)

  def step(self, state, step: int):
    idx = jnp.asarray(self.real.indices(step, self.matching.outer_loop))
    state, metrics = self.step_fn(state, self.x_train, idx, self.mask, self.prior)
    faults.point("distill.step")   # dispatched, still computing
    return state, jax.device_get(metrics), f"{self.name} step {step}"


class DistributionMatching(GradientMatching):
  """DM: the mean embeddings of real and synthetic batches matched, class by class."""
  name = "dm"
  description = "distribution matching (DM)"
  matched_blocks = True

  @staticmethod
  def validate(config) -> None:
    validate_matching(config)
    require(config.distill.param_mask != "deep", "distill.param_mask",
            "DM always matches the last block's features; 'deep' would mask the "
            "embedding it matches", "use 'depth' (PAD's FIEM) or 'none'")
