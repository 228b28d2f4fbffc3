"""python -m dd_jax.gan.convert in.pkl out_dir

Converts an official StyleGAN-XL (StyleGAN3-family) pickle to a generator folder
(spec.json + params.npz, see generator.py) WITHOUT executing anything the pickle
carries. The official loader exec()s the module source stored with every persistent
object; here:

- a restricted unpickler resolves only an allowlist of globals (torch's tensor/storage
  rebuild functions, reimplemented here on NumPy; OrderedDict; NumPy's own array
  reconstruction; dill's type lookup for builtin types; dnnlib's EasyDict as a dict);
  every other global becomes an inert stub that records its arguments and state and
  never calls the real thing (so the discriminator, hooks and dill-pickled functions
  parse without running);
- persistent objects become records (class name, state, a hash of their source text);
- tensor storages (legacy torch.save streams inside the pickle) are parsed by a second
  restricted unpickler and read as raw little-endian arrays: torch is not needed.

Then G_ema's module tree is walked into the spec (layer order from `layer_names`, every
shape, factor, padding and filter from each layer's own state) and the params pytree.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import struct
import sys

import numpy as np

from dd_jax.errors import ConfigError, require
from dd_jax.torch_pickle import TENSOR_GLOBALS, _load_from_bytes, _numpy_globals
from dd_jax.gan.generator import FORMAT, save

SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex,
                 "bytearray": bytearray}


class PersistentObject:
  """A persistent (torch_utils.persistence) object: its class name and state only."""

  def __init__(self, class_name: str, state: dict, source_sha256: str):
    self.class_name, self.state, self.source_sha256 = class_name, state, source_sha256

  def __repr__(self):
    return f"PersistentObject({self.class_name})"


class Stub:
  """Stands in for any global not on the allowlist: takes any arguments and state,
  runs nothing."""
  module = name = "?"

  def __init__(self, *args, **kwargs):
    self.args, self.kwargs, self.state, self.items = args, kwargs, None, []

  def __setstate__(self, state):
    self.state = state

  def __setitem__(self, key, value):
    self.items.append((key, value))

  def append(self, value):
    self.items.append(value)

  def extend(self, values):
    self.items.extend(values)

  def __call__(self, *args, **kwargs):   # a stub "function" returns another stub
    return _stub(self.module, self.name)(*args, **kwargs)

  def __repr__(self):
    return f"Stub({self.module}.{self.name})"


def _stub(module: str, name: str) -> type:
  return type(f"Stub_{name}", (Stub,), {"module": module, "name": name})


class EasyDict(dict):
  """dnnlib.util.EasyDict, as a plain dict."""


def _reconstruct_persistent_obj(meta):
  if not isinstance(meta, dict) or "class_name" not in meta:
    return _stub("torch_utils.persistence", "malformed")(meta)
  source = meta.get("module_src") or ""
  digest = hashlib.sha256(source.encode() if isinstance(source, str) else b"").hexdigest()
  return PersistentObject(str(meta["class_name"]), meta.get("state") or {}, digest)


def _load_type(name):
  return {"NoneType": type(None), **SAFE_BUILTINS, "dict": dict, "list": list,
          "tuple": tuple}.get(name) or _stub("dill._dill", f"type_{name}")


ALLOWED = {
    **TENSOR_GLOBALS,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("dill._dill", "_load_type"): _load_type,
    ("dnnlib.util", "EasyDict"): EasyDict,
    **{("builtins", k): v for k, v in SAFE_BUILTINS.items()},
}


class SafeUnpickler(pickle.Unpickler):
  """Resolves only ALLOWED (and NumPy's reconstruction); stubs everything else."""

  def __init__(self, f):
    super().__init__(f)
    self.stubbed: set[str] = set()
    self.allowed = {**ALLOWED, **_numpy_globals()}

  def find_class(self, module, name):
    module = "builtins" if module == "__builtin__" else module
    found = self.allowed.get((module, name))
    if found is not None:
      return found
    self.stubbed.add(f"{module}.{name}")
    return _stub(module, name)

  def persistent_load(self, pid):
    raise pickle.UnpicklingError(f"unexpected persistent id {pid!r} at the top level")


def safe_load(path: str) -> tuple[object, set[str]]:
  """The pickle's object tree (nothing executed) and the globals that were stubbed."""
  with open(path, "rb") as f:
    unpickler = SafeUnpickler(f)
    try:
      obj = unpickler.load()
    except (pickle.UnpicklingError, EOFError, ValueError, struct.error, StopIteration) as e:
      raise ConfigError("in.pkl", f"{path} is not a readable pickle ({e})",
                        "give an official StyleGAN-XL network pickle") from None
  return obj, unpickler.stubbed


# ---------------------------------------------------------------------- module tree


def _state(obj) -> dict:
  if isinstance(obj, PersistentObject):
    return obj.state
  if isinstance(obj, Stub) and isinstance(obj.state, dict):
    return obj.state
  raise ConfigError("in.pkl", f"expected a network module, found {obj!r}",
                    "give an official StyleGAN-XL network pickle")


def _module(obj, name: str):
  modules = _state(obj).get("_modules") or {}
  require(name in modules and modules[name] is not None, "in.pkl",
          f"{getattr(obj, 'class_name', obj)} has no submodule {name!r}",
          "give an official StyleGAN-XL network pickle")
  return modules[name]


def _array(obj, name: str, optional: bool = False):
  st = _state(obj)
  for group in ("_parameters", "_buffers"):
    if name in (st.get(group) or {}):
      value = st[group][name]
      if value is None:
        return None
      return np.asarray(value, np.float32)
  if optional:
    return None
  raise ConfigError("in.pkl", f"{getattr(obj, 'class_name', obj)} has no tensor {name!r}",
                    "give an official StyleGAN-XL network pickle")


def _attr(obj, name: str, default=None):
  value = _state(obj).get(name, default)
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  return value


def _fc(obj) -> tuple[dict, dict]:
  spec = {"in_features": int(_attr(obj, "in_features")),
          "out_features": int(_attr(obj, "out_features")),
          "activation": str(_attr(obj, "activation", "linear")),
          "weight_gain": float(_attr(obj, "weight_gain")),
          "bias_gain": float(_attr(obj, "bias_gain", 1.0))}
  params = {"weight": _array(obj, "weight")}
  bias = _array(obj, "bias", optional=True)
  if bias is not None:
    params["bias"] = bias
  return spec, params


def _pair(value) -> list[int]:
  value = np.asarray(value).reshape(-1).tolist()
  return [int(value[0]), int(value[-1])]


def _filter(obj, name: str):
  f = _array(obj, name, optional=True)
  return None if f is None else f.astype(np.float64).tolist()


def spec_and_params(g) -> tuple[dict, dict]:
  """The generator spec and params of a G_ema module tree."""
  mapping, synthesis = _module(g, "mapping"), _module(g, "synthesis")
  c_dim = int(_attr(g, "c_dim", 0))
  m_spec, m_params = _mapping(mapping, c_dim)
  input_spec, input_params = _input(_module(synthesis, "input"))
  names = list(_attr(synthesis, "layer_names") or [])
  require(bool(names), "in.pkl", "the synthesis network lists no layer_names",
          "give a StyleGAN3 / StyleGAN-XL pickle")
  layer_specs, layer_params = [], {}
  for name in names:
    layer_spec, layer_params[name] = _layer(_module(synthesis, name), name)
    layer_specs.append(layer_spec)
  num_ws = int(_attr(g, "num_ws", len(names) + 1))
  require(num_ws == len(names) + 1, "in.pkl", f"num_ws is {num_ws} for {len(names)} layers",
          "give an unmodified StyleGAN-XL pickle")
  spec = {"format": FORMAT, "class_name": g.class_name if isinstance(g, PersistentObject)
          else "?", "z_dim": int(_attr(g, "z_dim")), "c_dim": c_dim,
          "w_dim": int(_attr(g, "w_dim")), "num_ws": num_ws,
          "img_resolution": int(_attr(g, "img_resolution")),
          "img_channels": int(_attr(g, "img_channels")),
          "output_scale": float(_attr(synthesis, "output_scale", 0.25)),
          "mapping": m_spec, "input": input_spec, "layers": layer_specs,
          "source": {"sha256": g.source_sha256 if isinstance(g, PersistentObject) else ""}}
  check_spec(spec)
  return spec, {"mapping": m_params, "input": input_params, "layers": layer_params}


def _mapping(mapping, c_dim: int) -> tuple[dict, dict]:
  """The mapping network's (spec, params): class embedding and projection, FC layers."""
  m_spec, m_params = {"embed_proj": None, "layers": []}, {}
  modules = _state(mapping).get("_modules") or {}
  if c_dim:
    if modules.get("embed") is not None:
      m_params["embed"] = _array(modules["embed"], "weight")
    if modules.get("embed_proj") is not None:
      m_spec["embed_proj"], m_params["embed_proj"] = _fc(modules["embed_proj"])
  i = 0
  while modules.get(f"fc{i}") is not None:
    s, p = _fc(modules[f"fc{i}"])
    m_spec["layers"].append(s)
    m_params[f"fc{i}"] = p
    i += 1
  require(i > 0, "in.pkl", "the mapping network has no fc0", "give a StyleGAN-XL pickle")
  m_params["w_avg"] = _array(mapping, "w_avg")
  return m_spec, m_params


def _input(inp) -> tuple[dict, dict]:
  """The Fourier-feature input's (spec, params)."""
  a_spec, a_params = _fc(_module(inp, "affine"))
  input_spec = {"channels": int(_attr(inp, "channels")), "size": _pair(_attr(inp, "size")),
                "sampling_rate": float(_attr(inp, "sampling_rate")),
                "bandwidth": float(_attr(inp, "bandwidth")), "affine": a_spec}
  input_params = {"weight": _array(inp, "weight"), "freqs": _array(inp, "freqs"),
                  "phases": _array(inp, "phases"), "transform": _array(inp, "transform"),
                  "affine": a_params}
  return input_spec, input_params


def _layer(layer, name: str) -> tuple[dict, dict]:
  """A synthesis layer's (spec, params)."""
  aff_spec, aff_params = _fc(_module(layer, "affine"))
  weight = _array(layer, "weight")
  clamp = _attr(layer, "conv_clamp")
  spec = {
      "name": name, "is_torgb": bool(_attr(layer, "is_torgb")),
      "in_channels": int(_attr(layer, "in_channels")),
      "out_channels": int(_attr(layer, "out_channels")),
      "conv_kernel": int(weight.shape[-1]),
      "in_size": _pair(_attr(layer, "in_size")), "out_size": _pair(_attr(layer, "out_size")),
      "up": int(_attr(layer, "up_factor")), "down": int(_attr(layer, "down_factor")),
      "padding": [int(p) for p in _attr(layer, "padding")],
      "up_filter": _filter(layer, "up_filter"), "down_filter": _filter(layer, "down_filter"),
      "conv_clamp": None if clamp is None else float(clamp),
      "affine": aff_spec,
      "in_sampling_rate": float(_attr(layer, "in_sampling_rate", 0.0)),
      "out_sampling_rate": float(_attr(layer, "out_sampling_rate", 0.0))}
  params = {"weight": weight, "bias": _array(layer, "bias"),
            "magnitude_ema": _array(layer, "magnitude_ema").reshape(()),
            "affine": aff_params}
  return spec, params


def check_spec(spec: dict) -> None:
  """The layers chain: sizes and channels of each layer feed the next, the last is
  ToRGB at the image resolution, and each output size follows from its upfirdn."""
  prev_size, prev_ch = spec["input"]["size"], spec["input"]["channels"]
  for s in spec["layers"]:
    require(s["in_size"] == prev_size and s["in_channels"] == prev_ch, "in.pkl",
            f"layer {s['name']} takes {s['in_size']}x{s['in_channels']} after "
            f"{prev_size}x{prev_ch}", "give an unmodified StyleGAN-XL pickle")
    k = s["conv_kernel"]
    taps = [1 if f is None else len(f) for f in (s["up_filter"], s["down_filter"])]
    for axis in (0, 1):
      p0, p1 = s["padding"][2 * axis], s["padding"][2 * axis + 1]
      n = ((s["in_size"][axis] + k - 1) * s["up"] + p0 + p1 - (taps[0] - 1) - (taps[1] - 1)
           + s["down"] - 1) // s["down"]
      require(n == s["out_size"][axis], "in.pkl", f"layer {s['name']} computes {n} pixels "
              f"but declares {s['out_size'][axis]}", "give an unmodified StyleGAN-XL pickle")
    prev_size, prev_ch = s["out_size"], s["out_channels"]
  last = spec["layers"][-1]
  require(last["is_torgb"] and last["out_size"][0] == spec["img_resolution"], "in.pkl",
          f"the last layer {last['name']} is not ToRGB at {spec['img_resolution']} px",
          "give an unmodified StyleGAN-XL pickle")


def convert(path: str, out_dir: str, network: str = "G_ema") -> dict:
  """Reads `path` safely and writes out_dir/spec.json + params.npz; returns the spec."""
  require(os.path.exists(path), "in.pkl", f"{path} does not exist", "give the pickle's path")
  data, stubbed = safe_load(path)
  require(isinstance(data, dict), "in.pkl", f"{path} holds a {type(data).__name__}, not the "
          "dict of networks of a StyleGAN-XL snapshot", "give a StyleGAN-XL network pickle")
  require(network in data, "in.pkl", f"{path} has no {network} (keys: "
          f"{', '.join(map(str, data)) or 'none'})",
          "give a full StyleGAN-XL snapshot (network-snapshot-*.pkl)")
  g = data[network]
  require(isinstance(g, PersistentObject) and g.class_name in ("Generator",
                                                               "SuperresGenerator"),
          "in.pkl", f"{network} is {g!r}, not a StyleGAN-XL Generator",
          "give a StyleGAN-XL network pickle")
  spec, params = spec_and_params(g)
  spec["converted_from"] = os.path.basename(path)
  spec["stubbed_globals"] = sorted(stubbed)
  save(out_dir, spec, params)
  return spec


def main(argv: list[str]) -> int:
  if len(argv) != 3:
    print("usage: python -m dd_jax.gan.convert in.pkl out_dir", file=sys.stderr)
    return 2
  try:
    spec = convert(argv[1], argv[2])
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"{argv[1]} -> {argv[2]}: {spec['class_name']}, {spec['img_resolution']} px, "
        f"{len(spec['layers'])} layers, num_ws {spec['num_ws']}, {spec['c_dim']} classes")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
