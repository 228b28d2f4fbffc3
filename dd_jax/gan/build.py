"""A StyleGAN3-t (StyleGAN-XL stem) generator of any size, seeded: its spec follows the
StyleGAN3 layer schedule (cutoffs, stopbands and sampling rates growing geometrically to
the last two critically sampled layers, Kaiser low-pass filters, the upfirdn paddings),
its weights StyleGAN3's initialisation. GLaD's random-prior mode uses it as is; the
small offline prior (`dd_jax.gan.train`) starts from it.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import scipy.signal

from dd_jax.errors import require
from dd_jax.gan.generator import FORMAT

MARGIN = 10
NUM_CRITICAL = 2
FILTER_SIZE = 6
LRELU_UPSAMPLING = 2


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> list | None:
  """StyleGAN3's separable Kaiser low-pass (None for one tap)."""
  if numtaps == 1:
    return None
  return scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs).tolist()


def layer_schedule(resolution: int, num_layers: int, channel_base: int, channel_max: int,
                   img_channels: int, margin: int = MARGIN) -> dict[str, np.ndarray]:
  """Per-layer cutoffs, half widths, sampling rates, sizes and channels (index 0 is the
  Fourier input, 1..num_layers+1 the layers incl. ToRGB); `margin` pixels on each side
  of the non-final feature maps (StyleGAN3: 10)."""
  first_cutoff, first_stopband = 2.0, 2 ** 2.1
  last_cutoff = resolution / 2
  last_stopband = last_cutoff * 2 ** 0.3
  exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - NUM_CRITICAL), 1)
  cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
  stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
  rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
  half_widths = np.maximum(stopbands, rates / 2) - cutoffs
  sizes = rates + margin * 2
  sizes[-2:] = resolution
  channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
  channels[-1] = img_channels
  return {"cutoffs": cutoffs, "half_widths": half_widths, "rates": rates,
          "sizes": sizes.astype(int), "channels": channels.astype(int)}


def _layer_spec(idx: int, num_layers: int, sched: dict, w_dim: int, conv_kernel: int,
                conv_clamp: float | None) -> dict:
  prev = max(idx - 1, 0)
  torgb = idx == num_layers
  k = 1 if torgb else conv_kernel
  in_sr, out_sr = float(sched["rates"][prev]), float(sched["rates"][idx])
  tmp_sr = max(in_sr, out_sr) * (1 if torgb else LRELU_UPSAMPLING)
  up, down = int(round(tmp_sr / in_sr)), int(round(tmp_sr / out_sr))
  up_taps = FILTER_SIZE * up if up > 1 and not torgb else 1
  down_taps = FILTER_SIZE * down if down > 1 and not torgb else 1
  in_size, out_size = int(sched["sizes"][prev]), int(sched["sizes"][idx])
  pad_total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
  pad_lo = (pad_total + up) // 2
  pad_hi = pad_total - pad_lo
  in_ch, out_ch = int(sched["channels"][prev]), int(sched["channels"][idx])
  return {
      "name": f"L{idx}_{out_size}_{out_ch}", "is_torgb": torgb,
      "in_channels": in_ch, "out_channels": out_ch, "conv_kernel": k,
      "in_size": [in_size, in_size], "out_size": [out_size, out_size],
      "up": up, "down": down, "padding": [pad_lo, pad_hi, pad_lo, pad_hi],
      "up_filter": lowpass_filter(up_taps, float(sched["cutoffs"][prev]),
                                  float(sched["half_widths"][prev]) * 2, tmp_sr),
      "down_filter": lowpass_filter(down_taps, float(sched["cutoffs"][idx]),
                                    float(sched["half_widths"][idx]) * 2, tmp_sr),
      "conv_clamp": conv_clamp,
      "affine": {"in_features": w_dim, "out_features": in_ch, "activation": "linear",
                 "weight_gain": 1 / math.sqrt(w_dim), "bias_gain": 1.0},
      "in_sampling_rate": in_sr, "out_sampling_rate": out_sr,
  }


def _fc_spec(fan_in: int, fan_out: int, activation: str, lr_multiplier: float) -> dict:
  return {"in_features": fan_in, "out_features": fan_out, "activation": activation,
          "weight_gain": lr_multiplier / math.sqrt(fan_in), "bias_gain": lr_multiplier}


def _f32(a) -> jnp.ndarray:
  return jnp.asarray(np.asarray(a, np.float32))


def _random_mapping(rng, c_dim: int, z_dim: int, w_dim: int, mapping_layers: int,
                    lr_multiplier: float) -> tuple[dict, dict]:
  """The mapping network's (spec, params): the class projection, the FC layers, w_avg."""
  embed = c_dim > 0
  mapping_spec = {"embed_proj": _fc_spec(c_dim, z_dim, "lrelu", 1.0) if embed else None,
                  "layers": []}
  mapping = {}
  if embed:
    mapping["embed_proj"] = {"weight": _f32(rng.standard_normal((z_dim, c_dim))),
                             "bias": _f32(np.zeros(z_dim))}
  fan_in = z_dim * (2 if embed else 1)
  for i in range(mapping_layers):
    mapping_spec["layers"].append(_fc_spec(fan_in, w_dim, "lrelu", lr_multiplier))
    mapping[f"fc{i}"] = {"weight": _f32(rng.standard_normal((w_dim, fan_in)) / lr_multiplier),
                         "bias": _f32(np.zeros(w_dim))}
    fan_in = w_dim
  mapping["w_avg"] = _f32(np.zeros((c_dim, w_dim) if embed else (w_dim,)))
  return mapping_spec, mapping


def _random_input(rng, sched: dict, w_dim: int) -> tuple[dict, dict]:
  """The Fourier-feature input's (spec, params)."""
  c0, bandwidth = int(sched["channels"][0]), float(sched["cutoffs"][0])
  freqs = rng.standard_normal((c0, 2))
  radii = np.sqrt(np.sum(freqs ** 2, axis=1, keepdims=True))
  freqs = freqs / (radii * np.exp(radii ** 2) ** 0.25) * bandwidth
  size = int(sched["sizes"][0])
  input_spec = {"channels": c0, "size": [size, size],
                "sampling_rate": float(sched["rates"][0]), "bandwidth": bandwidth,
                "affine": _fc_spec(w_dim, 4, "linear", 1.0)}
  inputs = {"weight": _f32(rng.standard_normal((c0, c0))), "freqs": _f32(freqs),
            "phases": _f32(rng.uniform(-0.5, 0.5, c0)), "transform": _f32(np.eye(3)),
            "affine": {"weight": _f32(np.zeros((4, w_dim))),
                       "bias": _f32(np.array([1.0, 0.0, 0.0, 0.0]))}}
  return input_spec, inputs


def random_generator(seed: int = 0, resolution: int = 32, img_channels: int = 3,
                     c_dim: int = 10, num_layers: int = 6, channel_base: int = 2048,
                     channel_max: int = 64, w_dim: int = 128, z_dim: int = 32,
                     conv_kernel: int = 3, mapping_layers: int = 2,
                     lr_multiplier: float = 0.01,
                     conv_clamp: float | None = 256.0,
                     margin: int = MARGIN) -> tuple[dict, dict]:
  """(spec, params) of a seeded StyleGAN3-t generator; the class enters through a
  projection of its one-hot code (no 1000-class embedding table). `lr_multiplier`
  scales the mapping network's learning rate (the function at initialisation does not
  depend on it); `margin` is the feature maps' border (StyleGAN3: 10 px)."""
  require(resolution >= 8 and resolution & (resolution - 1) == 0, "gan.resolution",
          f"is {resolution}", "use a power of two >= 8 (images are resized to the data's)")
  require(num_layers > NUM_CRITICAL, "gan.num_layers", f"is {num_layers}",
          f"use more than {NUM_CRITICAL} layers")
  sched = layer_schedule(resolution, num_layers, channel_base, channel_max, img_channels,
                         margin)
  rng = np.random.default_rng(seed)   # drawn from in this order: mapping, input, layers
  mapping_spec, mapping = _random_mapping(rng, c_dim, z_dim, w_dim, mapping_layers,
                                          lr_multiplier)
  input_spec, inputs = _random_input(rng, sched, w_dim)
  layer_specs, layers = [], {}
  for idx in range(num_layers + 1):
    s = _layer_spec(idx, num_layers, sched, w_dim, conv_kernel, conv_clamp)
    layer_specs.append(s)
    k = s["conv_kernel"]
    layers[s["name"]] = {
        "weight": _f32(rng.standard_normal((s["out_channels"], s["in_channels"], k, k))),
        "bias": _f32(np.zeros(s["out_channels"])),
        "magnitude_ema": _f32(np.ones(())),
        "affine": {"weight": _f32(rng.standard_normal((s["in_channels"], w_dim))),
                   "bias": _f32(np.ones(s["in_channels"]))}}
  spec = {"format": FORMAT, "class_name": "Generator", "z_dim": z_dim, "c_dim": c_dim,
          "w_dim": w_dim, "num_ws": num_layers + 2, "img_resolution": resolution,
          "img_channels": img_channels, "output_scale": 0.25, "mapping": mapping_spec,
          "input": input_spec, "layers": layer_specs, "source": f"random seed {seed}"}
  return spec, {"mapping": mapping, "input": inputs, "layers": layers}
