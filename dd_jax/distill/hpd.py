"""H-PD: GLaD's latents optimised layer by layer through the generator.

Starting with f after `hpd.start_layer` layers, each layer k runs `hpd.steps_per_layer`
outer steps of the configured objective with a fresh optimiser (an ordinary GLaD run
at glad.layer = k, in its own folder), then f advances one layer (f <- layer_k(f, ws),
clipped again) and ws keeps being optimised. After every layer the latents are
recorded (copied to disk, never referenced) with their class-relevant feature distance
(the paper's): with a trained network (the first expert's last snapshot),

  d = sum_c || mean_{x in real_c} cam_c(x) - mean_{x in syn_c} cam_c(x) ||^2,
  cam_c(x) = ReLU(d logit_c / d features) * features(x)   (penultimate features),

and the final set is the recorded one with the smallest distance (`hpd.select =
"distance"`), or the last layer's (`"last"`, what the released code ends with).

  distill/layer_<k>/        layer k's run (resumable like any run)
  distill/layer_<k>.npz     its final latents, labels, lr and distance
  distill/hpd.json          every layer's distance and the choice
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import os
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dd_jax.data import indexing
from dd_jax.errors import require
from dd_jax.distill import run
from dd_jax.metadata import read_npz, write_json_atomic, write_npz_atomic
from dd_jax.models.layers import Dense

SELECT = ("distance", "last")


@dataclasses.dataclass
class LayerStage:
  """What one layer's `Distiller` needs beyond its config (the Stage interface)."""
  layer: int
  last_layer: int
  run_dir: str
  initial: Callable[[object], tuple[dict, np.ndarray]] | None
  step_offset: int
  sequential: bool = False
  warm_start: None = None

  @property
  def index(self) -> int:
    return self.layer

  @property
  def label(self) -> str:
    return f"layer {self.layer}/{self.last_layer} "

  def export_meta(self, lr: float) -> dict:
    return {"hpd": {"layer": self.layer}}

  def frozen(self):
    return None

  def union(self, images, labels):
    return np.asarray(images), np.asarray(labels)


def validate(config: ml_collections.ConfigDict, num_layers: int | None = None) -> None:
  h = config.hpd
  require(h.steps_per_layer >= 1, "hpd.steps_per_layer", f"is {h.steps_per_layer}",
          "run >= 1 outer step per layer (the paper: 100 for MTT/DC, 10-20 for DM)")
  require(h.select in SELECT, "hpd.select", f"unknown {h.select!r}",
          f"use one of {', '.join(SELECT)}")
  require(h.real_per_class >= 1, "hpd.real_per_class", f"is {h.real_per_class}",
          "use e.g. 100 real images per class for the distance")
  if num_layers is not None:
    require(0 <= h.start_layer < num_layers, "hpd.start_layer",
            f"is {h.start_layer}, the prior has layers 0..{num_layers - 1} before its image",
            f"use a layer in [0, {num_layers - 1}]")


def cam_features(model, params, images: jax.Array, labels: jax.Array) -> jax.Array:
  """ReLU(d logit_y / d features) * features: each image's class-relevant features
  (the ConvNet family: features are the classifier's flattened input)."""
  feats = model.apply({"params": params}, images, train=False, features=True)
  head = Dense(model.num_classes)

  def logit(f, y):
    return head.apply({"params": params["fc"]}, f[None])[0, y]

  grads = jax.vmap(jax.grad(logit))(feats, labels)
  return jax.nn.relu(grads) * feats


def class_relevant_distance(model, params, real: jax.Array, real_labels: jax.Array,
                            syn: jax.Array, syn_labels: jax.Array,
                            num_classes: int) -> float:
  """sum over classes of |mean CAM features of real_c - mean of syn_c|^2."""
  real_cam = cam_features(model, params, real, real_labels)
  syn_cam = cam_features(model, params, syn, syn_labels)
  total = 0.0
  for c in range(num_classes):
    r, s = real_cam[real_labels == c], syn_cam[syn_labels == c]
    if len(s):
      total += float(jnp.sum(jnp.square(jnp.mean(r, 0) - jnp.mean(s, 0))))
  return total


class ProgressiveDistiller(run.StagedRun):
  """Runs the layers in order; a restarted run skips finished layers."""

  def _layer_config(self, k: int) -> ml_collections.ConfigDict:
    c = copy.deepcopy(self.config)
    with c.unlocked():
      c.glad.layer = k
      c.distill.iterations = self.config.hpd.steps_per_layer
    return c

  def _initial(self, k: int, previous: dict | None, distiller) -> tuple[dict, np.ndarray]:
    """Layer k's starting latents: the prior's at the first layer, else the previous
    layer's final ws and its f advanced through layer k - 1 (clipped again)."""
    from dd_jax.distill import latent
    space, prior, g = distiller.space, distiller.prior[0], self.config.glad
    if previous is None:
      labels = np.repeat(np.arange(self.prepared.num_classes, dtype=np.int32),
                         self.config.distill.ipc)
      from dd_jax.gan import train as train_prior
      return latent.initial_latents(space, prior, train_prior.prior_classes(self.config, labels),
                                    g.init, self.config.seed, g.average_samples,
                                    g.clip), labels
    ws = jnp.asarray(previous["ws"])
    f = space.gen.advance(prior, ws, jnp.asarray(previous["f"]), k - 1)
    f = jnp.clip(jnp.nan_to_num(f, nan=0.0, posinf=g.clip, neginf=-g.clip), -g.clip, g.clip)
    return {"ws": ws, "f": f}, previous["labels"]

  def _distance(self, distiller, images: np.ndarray, labels: np.ndarray) -> float:
    """The class-relevant distance of rendered images, the first expert's last
    snapshot as the trained network (DC/DM runs have no experts: NaN, not ranked)."""
    if distiller.reader is None:
      return float("nan")
    p = self.prepared
    params = distiller.reader.params(distiller.reader.experts[0], distiller.reader.epochs,
                                     distiller.abstract)
    idx = indexing.sample_per_class(p.y_train, p.num_classes, self.config.hpd.real_per_class,
                                    seed=self.config.seed + 7, field="hpd.real_per_class")
    hard = labels if labels.ndim == 1 else labels.argmax(1)
    return class_relevant_distance(distiller.model, params, jnp.asarray(p.x_train[idx]),
                                   jnp.asarray(p.y_train[idx]), jnp.asarray(images),
                                   jnp.asarray(hard), p.num_classes)

  def run(self) -> str:
    from dd_jax import summaries
    from dd_jax.distill import state as state_lib
    from dd_jax.gan import train as train_prior
    run.record_workdir(self.run_dir, self.identity)
    h = self.config.hpd
    num_layers = train_prior.load_prior(self.config, self.workdir, self.prepared)[0].num_layers
    validate(self.config, num_layers)
    records, previous, offset, summary = [], None, 0, ""
    for k in range(h.start_layer, num_layers):
      path = os.path.join(self.run_dir, f"layer_{k}.npz")
      config = self._layer_config(k)
      if not os.path.exists(path):
        stage = LayerStage(k, num_layers - 1, os.path.join(self.run_dir, f"layer_{k}"),
                           functools.partial(self._initial, k, previous), offset)
        distiller = run.Distiller(config, self.workdir, self.prepared, stage=stage)
        summary = distiller.run()
        state = distiller.final_state
        images, labels = distiller.synset(state)
        write_npz_atomic(path, ws=np.asarray(state.images["ws"]), f=np.asarray(state.images["f"]),
              labels=np.asarray(state.labels), lr=np.float32(distiller.syn_lr(state)),
              distance=np.float64(self._distance(distiller, images, labels)))
      previous = read_npz(path)
      records.append({"layer": k, "distance": float(previous["distance"])})
      offset += config.distill.iterations
    ranked = [r for r in records if np.isfinite(r["distance"])]
    chosen = (min(ranked, key=lambda r: r["distance"])
              if h.select == "distance" and ranked else records[-1])
    if chosen is not records[-1]:   # export the chosen layer's set as the synthetic set
      stored = read_npz(os.path.join(self.run_dir, f"layer_{chosen['layer']}.npz"))
      distiller = run.Distiller(self._layer_config(chosen["layer"]), self.workdir,
                                self.prepared, stage=LayerStage(
                                    chosen["layer"], num_layers - 1, os.path.join(
                                        self.run_dir, f"layer_{chosen['layer']}"),
                                    None, offset))
      state = distiller._state_like().replace(
          images={"ws": jnp.asarray(stored["ws"]), "f": jnp.asarray(stored["f"])},
          labels=jnp.asarray(stored["labels"]),
          lr_param=state_lib.lr_to_param(float(stored["lr"]),
                                         self.config.distill.syn_lr_param))
      writer = summaries.create_writer(self.workdir)
      distiller.export(state, writer)
      writer.flush()
    write_json_atomic(os.path.join(self.run_dir, "hpd.json"),
                      {"layers": records, "select": h.select, "chosen": chosen})
    return (summary + "\n" if summary else "") + (
        f"H-PD: layer {chosen['layer']} chosen ({h.select}; distances "
        + ", ".join(f"{r['layer']}: {r['distance']:.4g}" for r in records) + ")")
