"""A StyleGAN-XL generator from data: a JSON-able spec (every shape, factor, padding and
filter, as a converted checkpoint or `build.random_generator` gives it) and a params
pytree of arrays.

    gen = Generator(spec)
    ws = gen.mapping(params, z, labels)                  # [B, num_ws, w_dim]
    f = gen.to_f(params, ws, k)                          # after the first k layers
    images = gen.from_f(params, ws, f, k)                # [B, H, W, C], about [-1, 1]
    f = gen.advance(params, ws, f, k)                    # layer k: f_k -> f_{k+1}

Layer i uses ws[:, i + 1] (ws[:, 0] drives the Fourier input), as GLaD's split; k counts
positions in `spec["layers"]`, not the numbers in the layer names. Filters and all
sizes are static (from the spec); only the params are traced.

Params: {"mapping": {"embed"?, "embed_proj"?: {weight, bias}, "fc0": ..., "w_avg"},
         "input": {"weight", "freqs", "phases", "transform", "affine": {weight, bias}},
         "layers": {name: {"weight", "bias", "magnitude_ema", "affine": {weight, bias}}}}
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dd_jax.errors import require
from dd_jax.gan import ops

Array = jax.Array
Params = Any
FORMAT = "dd_jax.stylegan_xl/1"


def _fc(p: dict, s: dict, x: Array) -> Array:
  return ops.fully_connected(x, p["weight"], p.get("bias"), s["weight_gain"],
                             s["bias_gain"], s["activation"])


@dataclasses.dataclass(frozen=True, eq=False)
class Generator:
  """The forward functions of one spec (hashable by identity, so jitted callers that
  close over it compile once per generator)."""
  spec: dict
  conv_impl: str = "auto"

  def __post_init__(self):
    require(self.spec.get("format") == FORMAT, "gan.spec",
            f"format {self.spec.get('format')!r} is not {FORMAT!r}",
            "convert the checkpoint with python -m dd_jax.gan.convert")

  @property
  def num_layers(self) -> int:
    return len(self.spec["layers"])

  @property
  def num_ws(self) -> int:
    return self.spec["num_ws"]

  @property
  def num_classes(self) -> int:
    return self.spec["c_dim"]

  def check_layer(self, k: int, field: str = "gan.layer") -> None:
    require(0 <= k <= self.num_layers, field, f"is {k}, the generator has layers 0.."
            f"{self.num_layers} (0 = the Fourier input, {self.num_layers} = the image)",
            f"use a layer index in [0, {self.num_layers}]")

  def mapping(self, params: Params, z: Array, labels: Array | None = None,
              psi: float = 1.0) -> Array:
    """z [B, z_dim] and int class labels [B] -> ws [B, num_ws, w_dim] (truncation psi
    towards the class's w_avg, 1 = none)."""
    s, p = self.spec["mapping"], params["mapping"]
    x = ops.normalize_2nd_moment(z.astype(jnp.float32))
    if self.spec["c_dim"]:
      require(labels is not None, "labels", "the generator is conditional",
              "pass a class label per latent")
      y = p["embed"][labels] if "embed" in p else jax.nn.one_hot(labels, self.spec["c_dim"])
      if s.get("embed_proj"):
        y = _fc(p["embed_proj"], s["embed_proj"], y)
      y = ops.normalize_2nd_moment(y)
      x = jnp.concatenate([x, y], axis=1)
    for i, fc in enumerate(s["layers"]):
      x = _fc(p[f"fc{i}"], fc, x)
    ws = jnp.repeat(x[:, None, :], self.num_ws, axis=1)
    if psi != 1.0:
      avg = p["w_avg"]
      avg = avg[labels] if avg.ndim == 2 else avg[None]
      ws = avg[:, None, :] + psi * (ws - avg[:, None, :])
    return ws

  def class_mean_w(self, params: Params, key: Array, samples: int = 1000) -> Array:
    """[c_dim, num_ws, w_dim]: each class's mean of the mapping over `samples` draws of
    z ~ N(0, I) (StyleGAN's w_avg per class; GLaD's "average" initialisation)."""
    means = []
    for cls in range(self.num_classes):
      z = jax.random.normal(jax.random.fold_in(key, cls), (samples, self.spec["z_dim"]))
      means.append(jnp.mean(self.mapping(params, z, jnp.full((samples,), cls)), 0))
    return jnp.stack(means)

  def input(self, params: Params, w: Array) -> Array:
    s, p = self.spec["input"], params["input"]
    return ops.fourier_features(
        w, p["affine"]["weight"], p["affine"]["bias"], s["affine"]["weight_gain"],
        s["affine"]["bias_gain"], p["freqs"], p["phases"], p["transform"], p["weight"],
        size=tuple(s["size"]), sampling_rate=s["sampling_rate"], bandwidth=s["bandwidth"])

  def layer(self, params: Params, k: int, x: Array, w: Array) -> Array:
    """Synthesis layer k (0-based position) on x with its latent w [B, w_dim]."""
    s = self.spec["layers"][k]
    p = params["layers"][s["name"]]
    styles = _fc(p["affine"], s["affine"], w)
    if s["is_torgb"]:
      styles = styles * (1.0 / np.sqrt(s["in_channels"] * s["conv_kernel"] ** 2))
    x = ops.modulated_conv2d(x, p["weight"], styles, demodulate=not s["is_torgb"],
                             input_gain=jax.lax.rsqrt(p["magnitude_ema"]),
                             conv_impl=self.conv_impl)
    up_filter = None if s["up_filter"] is None else np.asarray(s["up_filter"])
    down_filter = None if s["down_filter"] is None else np.asarray(s["down_filter"])
    torgb = s["is_torgb"]
    return ops.filtered_lrelu(x, up_filter, down_filter, p["bias"], s["up"], s["down"],
                              tuple(s["padding"]), gain=1.0 if torgb else ops.SQRT2,
                              slope=1.0 if torgb else ops.LRELU_SLOPE,
                              clamp=s["conv_clamp"])

  def to_f(self, params: Params, ws: Array, k: int) -> Array:
    """The feature map after the first k synthesis layers (k = 0: Fourier features)."""
    self.check_layer(k)
    x = self.input(params, ws[:, 0])
    for i in range(k):
      x = self.layer(params, i, x, ws[:, i + 1])
    return x

  def advance(self, params: Params, ws: Array, f: Array, k: int) -> Array:
    """f after k layers -> f after k + 1 layers (H-PD's step to the next layer)."""
    require(0 <= k < self.num_layers, "gan.layer", f"cannot advance past layer {k} of "
            f"{self.num_layers}", "stop at the last layer")
    return self.layer(params, k, f, ws[:, k + 1])

  def from_f(self, params: Params, ws: Array, f: Array, k: int) -> Array:
    """Images [B, H, W, C] (the generator's range, about [-1, 1]) from f after k layers."""
    self.check_layer(k)
    x = f
    for i in range(k, self.num_layers):
      x = self.layer(params, i, x, ws[:, i + 1])
    return x * self.spec["output_scale"]

  def calibrate(self, params: Params, ws: Array) -> Params:
    """params with each layer's magnitude_ema set to the mean square of its input on
    `ws` (StyleGAN3 tracks it as an EMA while training; at inference it is a constant)."""
    layers = dict(params["layers"])
    x = self.input(params, ws[:, 0])
    for i, s in enumerate(self.spec["layers"]):
      layers[s["name"]] = dict(layers[s["name"]],
                               magnitude_ema=jnp.mean(jnp.square(x)).astype(jnp.float32))
      x = self.layer({**params, "layers": layers}, i, x, ws[:, i + 1])
    return {**params, "layers": layers}

  def to_pixels(self, images: Array, size: tuple[int, int], channels: int) -> Array:
    """Generator output (about [-1, 1]) -> [0, 1] pixels [B, H, W, channels] of the
    data's size (linear resize when it differs; grey <-> RGB by mean / repeat)."""
    x = (images + 1) / 2
    if x.shape[1:3] != tuple(size):
      x = jax.image.resize(x, (x.shape[0], *size, x.shape[3]), method="linear")
    if x.shape[3] != channels:
      x = (jnp.mean(x, axis=3, keepdims=True) if channels == 1
           else jnp.repeat(x[..., :1], channels, axis=3))
    return x

  def synthesize(self, params: Params, ws: Array) -> Array:
    """Images [B, H, W, C] (about [-1, 1]) of W+ latents: every layer."""
    return self.from_f(params, ws, self.to_f(params, ws, 0), 0)

  def f_shape(self, k: int) -> tuple[int, int, int]:
    """(H, W, C) of the feature map after k layers."""
    self.check_layer(k)
    if k == 0:
      s = self.spec["input"]
      return (s["size"][1], s["size"][0], s["channels"])
    s = self.spec["layers"][k - 1]
    return (s["out_size"][1], s["out_size"][0], s["out_channels"])


def save(directory: str, spec: dict, params: Params) -> None:
  """spec.json + params.npz (flattened dotted names), each written atomically."""
  import io
  import os
  from dd_jax.metadata import write_bytes_atomic, write_json_atomic
  os.makedirs(directory, exist_ok=True)
  flat = {".".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
          for path, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  buf = io.BytesIO()
  np.savez(buf, **flat)
  write_bytes_atomic(os.path.join(directory, "params.npz"), buf.getvalue())
  write_json_atomic(os.path.join(directory, "spec.json"), spec)


def load(directory: str) -> tuple[dict, Params]:
  """(spec, params) of a generator folder written by `save` (or the converter)."""
  import os
  spec_path = os.path.join(directory, "spec.json")
  from dd_jax.metadata import read_json, read_npz
  fix = ("give a folder written by python -m dd_jax.gan.convert or dd_jax.gan.train "
         "(a damaged one: delete it and convert or train again)")
  require(os.path.exists(spec_path), "gan.prior", f"{directory} has no spec.json", fix)
  spec = read_json(spec_path, "gan.prior", fix)
  params: dict = {}
  for name, value in read_npz(os.path.join(directory, "params.npz"), "gan.prior",
                              fix).items():
    node = params
    *parents, leaf = name.split(".")
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = jnp.asarray(value)
  return spec, params
