"""python -m dd_jax.gan.train --config=configs/<dataset>_<method>.py --workdir=DIR

Fits the small offline prior: a StyleGAN3-t generator of the `gan` section's size,
trained on the run's data as the decoder of a conditional VAE.

Objective, and why: the generator decodes z ~ N(0, I) and the class through its own
mapping network; a small ConvNet encodes each real image to a Gaussian over z; the loss
is the negative ELBO, sum((decoded - real)^2) / (2 sigma^2) in [0, 1] pixels plus
KL(q(z|x) || N(0, I)). GLaD and H-PD start from mapping(z, class) with z ~ N(0, I) (or
its class average), and the VAE's KL term trains exactly that prior. A GAN would need
a discriminator and is fragile on two CPU cores in minutes; the VAE is stable,
deterministic and converges in a few hundred steps (its images are smooth, which
distillation then refines).

The ELBO alone lets the encoder carry the class in z, and the decoder then ignores the
class input (measured on Fashion-MNIST, 800 steps: a trained classifier recognised
19-25% of the samples, chance 10%). So the encoder also has a class head, trained on
the real images, and the decoded samples of z ~ N(0, I) must be recognised by it as
their class: `gan.class_weight` x (CE(real) + CE(sample)), the sample term moving the
generator only (an auxiliary-classifier term, as in AC-GAN).

magnitude_ema (StyleGAN3's input gain) is re-estimated from the current batch every
`gan.calibrate_every` steps instead of as a running EMA. Writes <dir>/spec.json,
params.npz, train.json (losses, time) and samples.png, the folder appearing at once
(built aside, then renamed).
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dd_jax import models
from dd_jax.data import pipeline
from dd_jax.distill import export
from dd_jax.errors import require, require_at_least
from dd_jax.gan import build, generator
from dd_jax.metadata import write_bytes_atomic, write_json_atomic

PRIORS = ("trained", "random")
FIXED = ("freqs", "phases", "transform", "magnitude_ema")   # buffers, not trained


def validate(config: ml_collections.ConfigDict) -> None:
  g = config.gan
  require_at_least(g, "gan", {"resolution": 8, "num_layers": 3, "channel_base": 1,
                              "channel_max": 1, "w_dim": 1, "z_dim": 1, "train_steps": 0,
                              "batch_size": 1, "encoder_width": 1, "calibrate_every": 1,
                              "log_every": 1, "margin": 0})
  require(g.mapping_lr_multiplier > 0, "gan.mapping_lr_multiplier",
          f"is {g.mapping_lr_multiplier}", "use a positive factor (StyleGAN: 0.01)")
  require(g.lr > 0, "gan.lr", f"is {g.lr}", "use a positive learning rate, e.g. 2e-3")
  require(g.recon_sigma > 0, "gan.recon_sigma", f"is {g.recon_sigma}", "use e.g. 0.1")
  require(g.class_weight >= 0, "gan.class_weight", f"is {g.class_weight}",
          "use 0 (the plain ELBO) or a positive weight")


def prior_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  return config.gan.dir or os.path.join(workdir, "prior")


def initial_generator(config: ml_collections.ConfigDict, num_classes: int,
                      channels: int) -> tuple[dict, dict]:
  """The seeded, untrained generator of the `gan` section (GLaD's random prior)."""
  g = config.gan
  return build.random_generator(config.seed, resolution=g.resolution, img_channels=channels,
                                c_dim=num_classes, num_layers=g.num_layers,
                                channel_base=g.channel_base, channel_max=g.channel_max,
                                w_dim=g.w_dim, z_dim=g.z_dim, margin=g.margin,
                                lr_multiplier=g.mapping_lr_multiplier)


def _split(params) -> tuple[dict, dict]:
  """(trainable, fixed) leaf labels of the generator params."""
  def label(path, _):
    return "fixed" if getattr(path[-1], "key", None) in FIXED else "train"
  return jax.tree_util.tree_map_with_path(label, params)


def encode(encoder, encoder_params, pixels: jax.Array, z_dim: int):
  """[0, 1] pixels -> (mu, logvar, class logits)."""
  out = encoder.apply({"params": encoder_params}, pixels * 2 - 1, train=False)
  return out[:, :z_dim], jnp.clip(out[:, z_dim:2 * z_dim], -10.0, 5.0), out[:, 2 * z_dim:]


def decode(gen: generator.Generator, params, z: jax.Array, labels: jax.Array, size,
           channels: int) -> jax.Array:
  """z and class labels -> [0, 1] pixels of the data's size and channels."""
  return gen.to_pixels(gen.synthesize(params, gen.mapping(params, z, labels)), size, channels)


def make_loss(gen: generator.Generator, encoder, size, channels: int, sigma: float,
              class_weight: float):
  """loss(params, pixels, labels, key) -> (loss per image, parts): the negative ELBO
  plus class_weight x the class terms (module docstring)."""
  z_dim = gen.spec["z_dim"]

  def loss(params, pixels, labels, key):
    mu, logvar, logits = encode(encoder, params["encoder"], pixels, z_dim)
    noise_key, prior_key = jax.random.split(key)
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(noise_key, mu.shape)
    g = params["generator"]
    decoded = decode(gen, g, z, labels, size, channels)
    recon = jnp.sum(jnp.square(decoded - pixels), axis=(1, 2, 3)) / (2 * sigma ** 2)
    kl = 0.5 * jnp.sum(jnp.square(mu) + jnp.exp(logvar) - 1 - logvar, axis=1)
    parts = {"recon": jnp.mean(recon), "kl": jnp.mean(kl),
             "mse": jnp.mean(jnp.square(decoded - pixels))}
    total = jnp.mean(recon + kl)
    if class_weight:
      ce_real = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
      sampled = decode(gen, g, jax.random.normal(prior_key, mu.shape), labels, size, channels)
      frozen = jax.lax.stop_gradient(params["encoder"])   # the sample term moves G only
      ce_sample = optax.softmax_cross_entropy_with_integer_labels(
          encode(encoder, frozen, sampled, z_dim)[2], labels)
      total = total + class_weight * jnp.mean(ce_real + ce_sample)
      parts.update(ce_real=jnp.mean(ce_real), ce_sample=jnp.mean(ce_sample))
    return total, parts

  return loss


def sample_grid(gen: generator.Generator, params, num_classes: int, size, channels: int,
                seed: int, per_class: int = 8) -> np.ndarray:
  """[0, 1] images of z ~ N(0, I) for each class, as a class grid (for a PNG)."""
  labels = jnp.repeat(jnp.arange(num_classes), per_class)
  z = jax.random.normal(jax.random.PRNGKey(seed), (len(labels), gen.spec["z_dim"]))
  pixels = decode(gen, params, z, labels, size, channels)
  return export.class_grid(np.clip(np.asarray(pixels), 0, 1), np.asarray(labels),
                           num_classes)


@functools.lru_cache(maxsize=4)
def _programs(spec_json: str, conv_impl: str, encoder_width: int, lr: float,
              sigma: float, class_weight: float, size: tuple[int, int], channels: int):
  """The generator, encoder, optimiser and jitted step / calibration / held-out MSE of
  one prior setup, compiled once per process."""
  gen = generator.Generator(json.loads(spec_json), conv_impl=conv_impl)
  z_dim = gen.spec["z_dim"]
  encoder = models.build("ConvNet", 2 * z_dim + gen.num_classes, width=encoder_width, depth=3,
                         norm="instancenorm", conv_impl=conv_impl)
  tx = optax.multi_transform(
      {"train": optax.adam(lr), "fixed": optax.set_to_zero()},
      lambda params: {"generator": _split(params["generator"]),
                      "encoder": jax.tree.map(lambda _: "train", params["encoder"])})
  loss_fn = make_loss(gen, encoder, size, channels, sigma, class_weight)

  @jax.jit
  def step(params, opt_state, pixels, y, key):
    (value, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, pixels, y, key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value, parts

  @jax.jit
  def calibrate(params, pixels, y):
    mu = encode(encoder, params["encoder"], pixels, z_dim)[0]   # the posterior means
    ws = gen.mapping(params["generator"], mu, y)
    return {**params, "generator": gen.calibrate(params["generator"], ws)}

  @jax.jit
  def held_out_mse(params, pixels, y):   # posterior means, no sampling noise
    mu = encode(encoder, params["encoder"], pixels, z_dim)[0]
    decoded = decode(gen, params["generator"], mu, y, size, channels)
    return jnp.mean(jnp.square(decoded - pixels))

  return gen, encoder, tx, step, calibrate, held_out_mse


def _fit(config, prepared: pipeline.Prepared, key, params, opt_state, step, calibrate):
  """gan.train_steps steps on random batches (seeded), the generator recalibrated every
  gan.calibrate_every: (params, opt_state, the logged history, seconds)."""
  g, x_train, y_train = config.gan, prepared.x_train, prepared.y_train
  rng = np.random.default_rng(config.seed)
  history, start = [], time.perf_counter()
  for it in range(g.train_steps):
    idx = rng.choice(len(x_train), g.batch_size, replace=False)
    pixels = jnp.asarray(prepared.pre.invert(x_train[idx]))
    y = jnp.asarray(y_train[idx], jnp.int32)
    k = jax.random.fold_in(key, 100 + it)
    if it % g.calibrate_every == 0:
      params = calibrate(params, pixels, y)
    params, opt_state, value, parts = step(params, opt_state, pixels, y, k)
    if (it + 1) % g.log_every == 0 or it + 1 == g.train_steps:
      value = float(value)
      require(np.isfinite(value), "gan.lr", f"the prior's loss is {value} at step {it + 1}",
              "lower gan.lr")
      history.append({"step": it + 1, "loss": value,
                      **{k2: float(v) for k2, v in parts.items()}})
      elapsed = time.perf_counter() - start
      terms = ", ".join(f"{k2} {history[-1][k2]:.4g}" for k2 in parts)
      logging.info("prior step %d/%d: loss %.1f (%s), %.0fs, ETA %.0fs", it + 1,
                   g.train_steps, value, terms, elapsed,
                   elapsed / (it + 1) * (g.train_steps - it - 1))
  return params, opt_state, history, time.perf_counter() - start


def train_prior(config: ml_collections.ConfigDict, workdir: str,
                prepared: pipeline.Prepared | None = None) -> str:
  """Trains the small prior (unless its folder exists) and returns the folder."""
  validate(config)
  out = prior_dir(config, workdir)
  if os.path.exists(os.path.join(out, "spec.json")):
    logging.info("prior: %s exists, not trained again", out)
    return out
  prepared = prepared or pipeline.prepare(config.data)
  g = config.gan
  x_train, y_train = prepared.x_train, prepared.y_train
  size, channels = x_train.shape[1:3], x_train.shape[3]
  spec, gen_params = initial_generator(config, prepared.num_classes, channels)
  programs = _programs(json.dumps(spec, sort_keys=True), config.model.conv_impl,
                       g.encoder_width, g.lr, g.recon_sigma, g.class_weight, tuple(size),
                       channels)
  gen, encoder, tx, step, calibrate, held_out_mse = programs
  key = jax.random.PRNGKey(config.seed)
  params = {"generator": gen_params,
            "encoder": encoder.init(jax.random.fold_in(key, 1),
                                    jnp.zeros((1, *x_train.shape[1:]), jnp.float32),
                                    train=False)["params"]}
  opt_state = tx.init(params)

  fixed = np.arange(min(256, len(x_train)))   # one fixed batch to report progress on
  fixed_batch = (jnp.asarray(prepared.pre.invert(x_train[fixed])),
                 jnp.asarray(y_train[fixed], jnp.int32))
  params = calibrate(params, *fixed_batch)
  initial_mse = float(held_out_mse(params, *fixed_batch))
  params, opt_state, history, seconds = _fit(config, prepared, key, params, opt_state,
                                             step, calibrate)
  g_params = params["generator"]   # w_avg: the class means StyleGAN tracks while training
  w_avg = gen.class_mean_w(g_params, jax.random.fold_in(key, 2))[:, 0]
  params = {**params, "generator": {**g_params, "mapping": {**g_params["mapping"],
                                                            "w_avg": w_avg}}}
  final_mse = float(held_out_mse(params, *fixed_batch))
  logging.info("prior: pixel MSE on %d training images %.4f -> %.4f", len(fixed),
               initial_mse, final_mse)
  spec["source"] = {"trained": "conditional VAE decoder (dd_jax.gan.train)",
                    "data": prepared.describe(), "steps": g.train_steps, "seed": config.seed}
  tmp = f"{out}.tmp.{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  generator.save(tmp, spec, params["generator"])
  write_json_atomic(os.path.join(tmp, "train.json"), {
      "objective": "negative ELBO of a conditional VAE (generator = decoder) + "
                   f"{g.class_weight} x auxiliary class cross-entropies",
      "seconds": round(seconds, 1), "mse_before": initial_mse, "mse_after": final_mse,
      "history": history})
  grid = sample_grid(gen, params["generator"], prepared.num_classes, tuple(size), channels,
                     config.seed)
  write_bytes_atomic(os.path.join(tmp, "samples.png"), export.to_png_bytes(grid, scale=2))
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  os.replace(tmp, out)
  logging.info("prior trained in %.0fs: %s", seconds, out)
  return out


def load_prior(config: ml_collections.ConfigDict, workdir: str,
               prepared: pipeline.Prepared, shapes_only: bool = False
               ) -> tuple[generator.Generator, dict]:
  """The configured prior for `prepared`'s classes: trained (first when missing),
  random, or a converted folder; a class count that differs is refused.
  `shapes_only`: a trained prior is not trained, the untrained one of the same
  architecture stands in (dd_jax.plan needs only its shapes)."""
  p = config.gan.prior
  channels = prepared.x_train.shape[3]
  if p == "random" or (p == "trained" and shapes_only):
    spec, params = initial_generator(config, prepared.num_classes, channels)
  else:
    folder = train_prior(config, workdir, prepared) if p == "trained" else p
    spec, params = generator.load(folder)
  class_map = tuple(config.gan.class_map) if p not in PRIORS else ()
  if class_map:   # e.g. ImageNet subsets on a converted ImageNet prior
    require(len(class_map) == prepared.num_classes and
            all(0 <= c < spec["c_dim"] for c in class_map), "gan.class_map",
            f"has {len(class_map)} entries for {prepared.num_classes} classes, values must "
            f"be prior classes in [0, {spec['c_dim']})",
            "give the prior's class index of each data class, in the data's order")
  else:
    require(spec["c_dim"] == prepared.num_classes, "gan.prior",
            f"the prior has {spec['c_dim']} classes, the data {prepared.num_classes}",
            "use a prior trained or converted for this dataset (gan.prior='trained' fits "
            "one), or map the data's classes with gan.class_map")
  return generator.Generator(spec, conv_impl=config.model.conv_impl), params


def main() -> None:
  from dd_jax import cli
  cli.run_with_config(lambda config, workdir: f"prior: {train_prior(config, workdir)}")


if __name__ == "__main__":
  main()


def prior_classes(config: ml_collections.ConfigDict, labels: np.ndarray) -> np.ndarray:
  """The prior's class of each data label: gan.class_map for a converted prior (the
  trained and random ones are built on the data's classes)."""
  class_map = tuple(config.gan.class_map) if config.gan.prior not in PRIORS else ()
  return np.asarray(class_map)[labels] if class_map else np.asarray(labels)
