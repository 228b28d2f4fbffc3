"""GLaD and H-PD: the synthetic set as latents of a frozen generator (the math:
distill/latent.py). GLaD optimises one space, glad.layer; H-PD runs GLaD space after
space (distill/hpd.py, above the loop): here are its config checks and its spaces.
"""
from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np

from dd_jax.distill import hpd_select, latent
from dd_jax.distill.methods import base
from dd_jax.errors import require, require_at_least
from dd_jax.gan import train as train_prior
from dd_jax.metadata import write_npz_atomic

SELECT = ("accuracy", "distance", "last")   # H-PD's final set
SEARCH = ("distance", "loss")   # what ranks a space's latents (Table 15)


class Latents(base.Parameterization):
  """GLaD: images = generator(latents), latents {"ws", "f"} after glad.layer."""
  name = "glad"
  description = "GLaD latents"
  latent = True

  def __init__(self, ctx: base.RunContext):
    super().__init__(ctx)
    config, x = ctx.config, ctx.prepared.x_train
    gen, params = train_prior.load_prior(config, ctx.workdir, ctx.prepared, ctx.plan_only)
    self.layer = latent.resolve_layer(config.glad.layer, gen)
    self.space = latent.LatentSpace(gen, self.layer, tuple(x.shape[1:3]), x.shape[3],
                                    config.glad.chunk)
    self.prior = (params, latent.preprocessing_arrays(ctx.prepared.pre))
    g = config.glad
    self.latent_tx = latent.latent_optimizer(g.lr_w, g.lr_f, g.momentum)
    self._render = jax.jit(self.space.render)

  @staticmethod
  def validate(config: ml_collections.ConfigDict) -> None:
    """GLaD's fields (the prior itself is checked when it is loaded)."""
    d, g = config.distill, config.glad
    require(g.init in latent.INITS, "glad.init", f"unknown {g.init!r}",
            f"use one of {', '.join(latent.INITS)}")
    require(g.lr_w > 0 and g.lr_f > 0, "glad.lr_w", f"lr_w {g.lr_w}, lr_f {g.lr_f}",
            "use positive learning rates (GLaD's MTT values: 10 and 10000)")
    require_at_least(g, "glad", {"layer": -1, "average_samples": 1, "chunk": 1})
    require(d.pix_init in ("real", "noise"), "distill.pix_init", f"{d.pix_init!r} picks "
            "real images, GLaD starts from the prior's latents",
            "use pix_init='real' (ignored)")
    train_prior.validate(config)

  def initial(self, method: base.Method):
    """The prior's latents of each image's class, classes grouped."""
    del method
    labels = np.repeat(np.arange(self.ctx.prepared.num_classes, dtype=np.int32),
                       self.ctx.config.distill.ipc)
    return self.latents_for(labels), labels

  def latents_for(self, labels: np.ndarray) -> dict:
    """glad.init's latents of the data labels `labels` (the prior's classes)."""
    config, g = self.ctx.config, self.ctx.config.glad
    return latent.initial_latents(self.space, self.prior[0],
                                  train_prior.prior_classes(config, labels), g.init,
                                  config.seed, g.average_samples, g.clip)

  def images_like(self, n: int, image_shape) -> dict:
    gen = self.space.gen
    return {"ws": np.zeros((n, gen.num_ws, gen.spec["w_dim"]), np.float32),
            "f": np.zeros((n,) + gen.f_shape(self.layer), np.float32)}

  def render(self, images) -> np.ndarray:
    return np.asarray(self._render(self.prior[0], self.prior[1], images))

  def export_extra(self, workdir: str, images) -> None:
    """The latents the exported images are rendered from, and their layer."""
    write_npz_atomic(os.path.join(workdir, "latents.npz"),
                     **{k: np.asarray(v) for k, v in images.items()},
                     layer=np.int32(self.layer))


class ProgressiveLatents(Latents):
  """H-PD: GLaD's latents, space by space (the staged run: distill/hpd.py)."""
  name = "hpd"
  description = "H-PD progressive latents"
  progressive = True
  sections = ("hpd",)

  @staticmethod
  def validate(config: ml_collections.ConfigDict) -> None:
    Latents.validate(config)
    validate_hpd(config)


def spaces(config: ml_collections.ConfigDict, num_layers: int) -> list[int]:
  """The layers where H-PD's optimisation spaces start."""
  h = config.hpd
  return list(range(h.start_layer, num_layers, h.layers_per_space))


def validate_hpd(config: ml_collections.ConfigDict, num_layers: int | None = None) -> None:
  """H-PD's fields; with the prior's `num_layers`, its spaces too."""
  h = config.hpd
  require(h.steps_per_layer >= 1, "hpd.steps_per_layer", f"is {h.steps_per_layer}",
          "run >= 1 outer step per space (the paper: 100 for MTT/DC, 20 for DM)")
  require(h.select in SELECT, "hpd.select", f"unknown {h.select!r}",
          f"use one of {', '.join(SELECT)}")
  require(h.real_per_class >= 1, "hpd.real_per_class", f"is {h.real_per_class}",
          "use e.g. 100 real images per class for the distance")
  require(h.layers_per_space >= 1, "hpd.layers_per_space", f"is {h.layers_per_space}",
          "group >= 1 generator layer per space (the paper: 2)")
  require(h.record_every >= 0, "hpd.record_every", f"is {h.record_every}",
          "use 0 (the final latents only) or the steps between distance checks")
  require(h.search in SEARCH, "hpd.search", f"unknown {h.search!r}",
          f"use one of {', '.join(SEARCH)} (or hpd.record_every=0: no search)")
  hpd_select.validate(config)
  if num_layers is not None:
    require(0 <= h.start_layer < num_layers, "hpd.start_layer",
            f"is {h.start_layer}, the prior has layers 0..{num_layers - 1} before its image",
            f"use a layer in [0, {num_layers - 1}]")
    count = num_layers - h.start_layer
    require(count % h.layers_per_space == 0, "hpd.layers_per_space",
            f"{h.layers_per_space} does not divide the {count} generator layers from "
            f"hpd.start_layer={h.start_layer} to the image",
            "use a divisor of " + str(count) + " or move hpd.start_layer")
