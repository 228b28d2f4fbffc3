"""H-PD: GLaD's latents optimised space by space through the generator (hpd.txt Sec. 3.3,
Algorithm 1).

Optimisation spaces start at layer `hpd.start_layer` and are `hpd.layers_per_space`
generator layers apart (the paper's main setting two, Tables 12-14); they must divide the
layers from the start to the image. In each space k, `hpd.steps_per_layer` outer steps
of the configured objective run with a fresh optimiser (an ordinary GLaD run at
glad.layer = k, in its own folder). Every `hpd.record_every` steps (and at the space's
start and end) the latents are scored by the class-relevant feature distance
(distill/hpd_select.py), and the space's best latents, not its last, are recorded and
passed on: f advanced through the space's layers (clipped again), ws kept optimising.
The final set is the recorded one with the best held-out accuracy (`hpd.select =
"accuracy"`, the paper's "real performance", on `data.holdout_per_class` training
images), the smallest distance (`"distance"`), or the last space's (`"last"`; with
`record_every = 0`, no search within a space either: the released code).

  distill/layer_<k>/        space k's run (resumable like any run)
  distill/layer_<k>.best.npz  its best latents so far (a resumed space keeps them)
  distill/layer_<k>.npz     its recorded latents, labels, lr, distance (and accuracy)
  distill/hpd.json          every space's scores and the choice
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import os
from typing import Callable

import jax.numpy as jnp
import ml_collections
import numpy as np

from dd_jax import summaries
from dd_jax.data import indexing
from dd_jax.distill import hpd_select, loop
from dd_jax.distill import state as state_lib
from dd_jax.distill import workdir as workdir_lib
from dd_jax.distill.methods import PARAMETERIZATIONS
from dd_jax.distill.methods.latents import spaces, validate_hpd
from dd_jax.distill.stage import OnePart, StagedRun
from dd_jax.distill.validation import validate_run
from dd_jax.gan import train as train_prior
from dd_jax.metadata import read_npz, write_json_atomic, write_npz_atomic


@dataclasses.dataclass
class BestLatents:
  """A space's best latents, kept on disk as they improve: by the class-relevant
  distance of their images, or (`by_loss`, Table 15's other basis) by the step's
  matching loss (the space's start, which has none, is not ranked then)."""
  path: str
  record_every: int               # 0: only the final latents count
  iterations: int
  score: Callable[[np.ndarray, np.ndarray], float]   # distance of rendered images
  by_loss: bool = False
  _best: float | None = None   # read from disk once (a resumed space), then kept

  def best_distance(self) -> float:
    if self._best is None:
      self._best = (float(read_npz(self.path)["distance"]) if os.path.exists(self.path)
                    else float("inf"))
    return self._best

  def offer(self, distiller, state, done: int, metrics: dict | None = None) -> None:
    due = done == self.iterations or (self.record_every and done % self.record_every == 0)
    if not due or (self.by_loss and metrics is None):
      return
    if self.by_loss:
      distance = float(metrics["loss"])
    else:
      images, labels = distiller.synset(state)
      distance = self.score(images, labels)
    if distance < self.best_distance() or not os.path.exists(self.path):
      self._best = distance
      write_npz_atomic(self.path, ws=np.asarray(state.images["ws"]),
                       f=np.asarray(state.images["f"]), labels=np.asarray(state.labels),
                       lr=np.float32(distiller.syn_lr(state)), distance=np.float64(distance),
                       step=np.int64(done))


@dataclasses.dataclass
class LayerStage(OnePart):
  """What one space's `Distiller` needs beyond its config (the Stage interface)."""
  layer: int
  last_layer: int
  run_dir: str
  initial: Callable[[object], tuple[dict, np.ndarray]] | None
  step_offset: int
  sequential: bool = False
  warm_start: None = None
  best: BestLatents | None = None

  @property
  def rng_index(self) -> int:
    return self.layer

  @property
  def label(self) -> str:
    return f"layer {self.layer}/{self.last_layer} "

  def export_meta(self, lr: float, per_image: int) -> dict:
    return {"hpd": {"layer": self.layer}}

  def after_step(self, distiller, state, done: int, metrics: dict | None = None) -> None:
    if self.best is not None:
      self.best.offer(distiller, state, done, metrics)


def enabled(config: ml_collections.ConfigDict) -> bool:
  """Whether the config's parameterisation runs space by space."""
  param = PARAMETERIZATIONS.get(config.distill.parameterization)
  return param is not None and param.progressive


class ProgressiveDistiller(StagedRun):
  """Runs the spaces in order; a restarted run skips finished spaces."""
  validate = staticmethod(validate_run)

  def _layer_config(self, k: int) -> ml_collections.ConfigDict:
    c = copy.deepcopy(self.config)
    with c.unlocked():
      c.glad.layer = k
      c.distill.iterations = self.config.hpd.steps_per_layer
    return c

  def _initial(self, k: int, previous: dict | None, distiller) -> tuple[dict, np.ndarray]:
    """Space k's starting latents: the prior's at the first space, else the previous
    space's recorded ws and its f advanced through the layers up to k (clipped again)."""
    param, g = distiller.param, self.config.glad
    if previous is None:
      return param.initial(distiller.method)
    space, prior = param.space, param.prior[0]
    ws, f = jnp.asarray(previous["ws"]), jnp.asarray(previous["f"])
    for layer in range(int(previous["layer"]), k):
      f = space.gen.advance(prior, ws, f, layer)
    f = jnp.clip(jnp.nan_to_num(f, nan=0.0, posinf=g.clip, neginf=-g.clip), -g.clip, g.clip)
    return {"ws": ws, "f": f}, previous["labels"]

  def _scorer(self, distiller) -> Callable[[np.ndarray, np.ndarray], float]:
    """The class-relevant distance of rendered images (NaN when hpd.distance_net is
    "expert" and the run has no experts: DC/DM)."""
    p, h = self.prepared, self.config.hpd
    if h.distance_net == "expert":
      params = distiller.method.expert_params()
      if params is None:
        return lambda images, labels: float("nan")
      net = hpd_select.CamNet(distiller.ctx.model, {"params": params}, pooled=False)
    else:
      net = self._net
    idx = indexing.sample_per_class(p.y_train, p.num_classes, h.real_per_class,
                                    seed=self.config.seed + 7, field="hpd.real_per_class")
    real = hpd_select.class_means(net, jnp.asarray(p.x_train[idx]),
                                  jnp.asarray(p.y_train[idx]), p.num_classes)

    def score(images, labels):
      hard = labels if labels.ndim == 1 else labels.argmax(1)
      return hpd_select.class_relevant_distance(net, real, None, jnp.asarray(images),
                                                jnp.asarray(hard), p.num_classes)
    return score

  def _record(self, distiller, k: int, best_path: str) -> dict:
    """Space k's recorded latents: its best by distance (or its final ones)."""
    state = distiller.final_state
    if os.path.exists(best_path):
      best = read_npz(best_path)
      state = state.replace(images={"ws": jnp.asarray(best["ws"]), "f": jnp.asarray(best["f"])},
                            labels=jnp.asarray(best["labels"]))
      lr, distance, step = float(best["lr"]), float(best["distance"]), int(best["step"])
    else:
      lr, step = float(distiller.syn_lr(state)), self.config.hpd.steps_per_layer
      distance = (self._scorer(distiller)(*distiller.synset(state))
                  if self._uses_distance() else float("nan"))
    record = dict(ws=np.asarray(state.images["ws"]), f=np.asarray(state.images["f"]),
                  labels=np.asarray(state.labels), lr=np.float32(lr),
                  distance=np.float64(distance), step=np.int64(step), layer=np.int64(k))
    if self.config.hpd.select == "accuracy":
      images, labels = distiller.synset(state)
      record["accuracy"] = np.float64(hpd_select.holdout_accuracy(
          self.config, self.prepared, images, labels, lr))
    return record

  def run(self) -> str:
    workdir_lib.record_workdir(self.run_dir, self.identity)
    h = self.config.hpd
    num_layers = train_prior.load_prior(self.config, self.workdir, self.prepared)[0].num_layers
    validate_hpd(self.config, num_layers)
    if h.distance_net != "expert" and self._uses_distance():
      self._net = hpd_select.distance_net(self.config, self.workdir, self.prepared)
    records, previous, offset, summary = [], None, 0, ""
    for k in spaces(self.config, num_layers):
      path = os.path.join(self.run_dir, f"layer_{k}.npz")
      config = self._layer_config(k)
      if not os.path.exists(path):
        best_path = os.path.join(self.run_dir, f"layer_{k}.best.npz")
        stage = LayerStage(k, num_layers - 1, os.path.join(self.run_dir, f"layer_{k}"),
                           functools.partial(self._initial, k, previous), offset)
        distiller = loop.Distiller(config, self.workdir, self.prepared, stage=stage)
        if h.record_every:
          stage.best = BestLatents(best_path, h.record_every, config.distill.iterations,
                                   self._scorer(distiller), by_loss=h.search == "loss")
        summary = distiller.run()
        write_npz_atomic(path, **self._record(distiller, k, best_path))
      previous = read_npz(path)
      records.append({"layer": k, "distance": float(previous["distance"]),
                      "step": int(previous["step"]),
                      **({"accuracy": float(previous["accuracy"])}
                         if "accuracy" in previous else {})})
      offset += config.distill.iterations
    chosen = self._choose(records)
    # export the chosen space's recorded set as the synthetic set
    stored = read_npz(os.path.join(self.run_dir, f"layer_{chosen['layer']}.npz"))
    distiller = loop.Distiller(self._layer_config(chosen["layer"]), self.workdir,
                              self.prepared, stage=LayerStage(
                                  chosen["layer"], num_layers - 1, os.path.join(
                                      self.run_dir, f"layer_{chosen['layer']}"),
                                  None, offset))
    state = distiller.state_like().replace(
        images={"ws": jnp.asarray(stored["ws"]), "f": jnp.asarray(stored["f"])},
        labels=jnp.asarray(stored["labels"]),
        lr_param=state_lib.lr_to_param(float(stored["lr"]), self.config.distill.syn_lr_param))
    writer = summaries.create_writer(self.workdir)
    distiller.export(state, writer)
    writer.flush()
    write_json_atomic(os.path.join(self.run_dir, "hpd.json"),
                      {"layers": records, "select": h.select, "chosen": chosen})
    score = "accuracy" if h.select == "accuracy" else "distance"
    scores = [r.get(score, float("nan")) for r in records]
    detail = ("" if all(np.isnan(scores)) else f"; {score} " + ", ".join(
        f"{r['layer']}: {v:.4g}" for r, v in zip(records, scores)))
    return (summary + "\n" if summary else "") + (
        f"H-PD: layer {chosen['layer']} chosen ({h.select}{detail})")

  def _uses_distance(self) -> bool:
    """Whether anything reads the class-relevant distance: the search within a space,
    or the final choice by it. The released code's setting (no search, the last space)
    trains no distance net."""
    h = self.config.hpd
    return bool(h.record_every) or h.select == "distance"

  def _choose(self, records: list[dict]) -> dict:
    select = self.config.hpd.select
    if select == "accuracy":
      return max(records, key=lambda r: r["accuracy"])
    ranked = [r for r in records if np.isfinite(r["distance"])]
    if select == "distance" and ranked:
      return min(ranked, key=lambda r: r["distance"])
    return records[-1]
