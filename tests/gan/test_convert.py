"""The converter on StyleGAN-XL-shaped pickles this test builds itself (torch tensors,
torch_utils.persistence records with module source, a torch.nn.Embedding, numpy
attributes): exact round trip, nothing executed, bad input."""
import collections
import os
import pickle
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax.errors import ConfigError
from dd_jax.gan import build, convert, generator

torch = pytest.importorskip("torch")


class Persistent:
  """What torch_utils.persistence pickles: REDUCE(_reconstruct_persistent_obj, (meta,))."""

  def __init__(self, class_name, state, source):
    self.meta = {"type": "class", "version": 6, "module_src": source,
                 "class_name": class_name, "state": state}

  def __reduce__(self):
    return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,))


class Evil:
  """Would run code under a plain unpickler."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.fixture
def persistence(monkeypatch):
  pkg = types.ModuleType("torch_utils")
  mod = types.ModuleType("torch_utils.persistence")

  def _reconstruct_persistent_obj(meta):   # the official one would exec module_src
    raise AssertionError("not called when pickling")

  _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
  _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
  mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
  pkg.persistence = mod
  monkeypatch.setitem(sys.modules, "torch_utils", pkg)
  monkeypatch.setitem(sys.modules, "torch_utils.persistence", mod)


def _t(a):
  return torch.tensor(np.asarray(a, np.float32))


def _module(class_name, source, params=(), buffers=(), modules=(), **attrs):
  state = {"training": False,
           "_parameters": collections.OrderedDict(
               (k, torch.nn.Parameter(_t(v), requires_grad=True)) for k, v in params),
           "_buffers": collections.OrderedDict(
               (k, None if v is None else _t(v)) for k, v in buffers),
           "_modules": collections.OrderedDict(modules),
           "_non_persistent_buffers_set": set(), "_init_args": (),
           "_init_kwargs": {"w_dim": np.int64(attrs.get("w_dim", 0))}, **attrs}
  return Persistent(class_name, state, source)


def _fc(spec, params, source):
  return _module("FullyConnectedLayer", source,
                 params=[("weight", params["weight"]), ("bias", params["bias"])],
                 in_features=spec["in_features"], out_features=spec["out_features"],
                 activation=spec["activation"], weight_gain=np.float64(spec["weight_gain"]),
                 bias_gain=spec["bias_gain"])


def _reference():
  """Our generator with a class embedding table (the official mapping's structure)."""
  spec, params = build.random_generator(1, resolution=16, img_channels=3, c_dim=3,
                                        num_layers=4, channel_base=256, channel_max=8,
                                        w_dim=16, z_dim=8)
  rng = np.random.default_rng(0)
  spec["mapping"]["embed_proj"] = dict(spec["mapping"]["embed_proj"], in_features=5,
                                       weight_gain=1 / np.sqrt(5))
  params["mapping"]["embed"] = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
  params["mapping"]["embed_proj"]["weight"] = jnp.asarray(rng.normal(size=(8, 5)),
                                                         jnp.float32)
  params["mapping"]["w_avg"] = jnp.asarray(rng.normal(size=(3, 16)), jnp.float32)
  # Filters as the checkpoint stores them (float32 buffers).
  for layer in spec["layers"]:
    for key in ("up_filter", "down_filter"):
      if layer[key] is not None:
        layer[key] = np.float32(layer[key]).astype(np.float64).tolist()
  return spec, params


def _pickle(spec, params, path, source="import os\nos.system('echo module source ran')",
            extra=None):
  p = jax.tree.map(np.asarray, params)
  m, ms = p["mapping"], spec["mapping"]
  embed = torch.nn.Embedding(3, 5)
  with torch.no_grad():
    embed.weight.copy_(_t(m["embed"]))
  mapping = _module(
      "MappingNetwork", source, buffers=[("w_avg", m["w_avg"])],
      modules=[("embed", embed), ("embed_proj", _fc(ms["embed_proj"], m["embed_proj"], source))]
      + [(f"fc{i}", _fc(s, m[f"fc{i}"], source)) for i, s in enumerate(ms["layers"])],
      z_dim=spec["z_dim"], c_dim=spec["c_dim"], w_dim=spec["w_dim"], num_ws=spec["num_ws"],
      num_layers=len(ms["layers"]))
  si, pi = spec["input"], p["input"]
  inp = _module("SynthesisInput", source, params=[("weight", pi["weight"])],
                buffers=[("transform", pi["transform"]), ("freqs", pi["freqs"]),
                         ("phases", pi["phases"])],
                modules=[("affine", _fc(si["affine"], pi["affine"], source))],
                channels=si["channels"], size=np.broadcast_to(np.asarray(si["size"][0]), [2]),
                sampling_rate=si["sampling_rate"], bandwidth=si["bandwidth"], w_dim=16)
  layers = []
  for s in spec["layers"]:
    q = p["layers"][s["name"]]
    layers.append((s["name"], _module(
        "SynthesisLayer", source, params=[("weight", q["weight"]), ("bias", q["bias"])],
        buffers=[("magnitude_ema", q["magnitude_ema"]), ("up_filter", s["up_filter"]),
                 ("down_filter", s["down_filter"])],
        modules=[("affine", _fc(s["affine"], q["affine"], source))],
        is_torgb=s["is_torgb"], is_critically_sampled=False, use_fp16=False,
        in_channels=s["in_channels"], out_channels=s["out_channels"],
        conv_kernel=s["conv_kernel"], conv_clamp=s["conv_clamp"],
        in_size=np.broadcast_to(np.asarray(s["in_size"][0]), [2]),
        out_size=np.broadcast_to(np.asarray(s["out_size"][0]), [2]),
        up_factor=s["up"], down_factor=s["down"], padding=list(s["padding"]),
        in_sampling_rate=s["in_sampling_rate"], out_sampling_rate=s["out_sampling_rate"])))
  synthesis = _module("SynthesisNetwork", source, modules=[("input", inp), *layers],
                      layer_names=[s["name"] for s in spec["layers"]],
                      num_ws=spec["num_ws"], output_scale=0.25,
                      img_resolution=spec["img_resolution"])
  g = _module("Generator", source, modules=[("mapping", mapping), ("synthesis", synthesis)],
              z_dim=spec["z_dim"], c_dim=spec["c_dim"], w_dim=spec["w_dim"],
              img_resolution=spec["img_resolution"], img_channels=spec["img_channels"],
              num_ws=spec["num_ws"])
  data = {"G": g, "D": extra, "G_ema": g, "augment_pipe": None,
          "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset"},
          "progress": {"cur_nimg": torch.LongTensor([1000]), "best_fid": 3.5}}
  with open(path, "wb") as f:
    pickle.dump(data, f, protocol=4)


def test_round_trip_is_exact_and_renders_the_same_images(persistence, tmp_path):
  spec, params = _reference()
  path = str(tmp_path / "net.pkl")
  _pickle(spec, params, path)
  out = convert.convert(path, str(tmp_path / "g"))
  got_spec, got = generator.load(str(tmp_path / "g"))
  for key in ("z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels",
              "input", "mapping"):
    assert got_spec[key] == spec[key], key
  for a, b in zip(got_spec["layers"], spec["layers"]):
    assert a == {k: b[k] for k in a}, a["name"]
  flat = lambda t: {jax.tree_util.keystr(k): np.asarray(v)   # noqa: E731
                    for k, v in jax.tree_util.tree_flatten_with_path(t)[0]}
  want, have = flat(params), flat(got)
  assert sorted(want) == sorted(have)
  for name in want:
    np.testing.assert_array_equal(have[name], want[name], err_msg=name)
  ref, conv = generator.Generator(spec), generator.Generator(got_spec)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 8))
  labels = jnp.array([0, 2])
  ws = ref.mapping(params, z, labels, psi=0.7)
  np.testing.assert_array_equal(conv.mapping(got, z, labels, psi=0.7), ws)
  np.testing.assert_array_equal(conv.from_f(got, ws, conv.to_f(got, ws, 2), 2),
                                ref.from_f(params, ws, ref.to_f(params, ws, 2), 2))
  assert "torch.nn.modules.sparse.Embedding" in out["stubbed_globals"]


def test_embedded_code_is_never_run(persistence, tmp_path):
  marker = str(tmp_path / "ran")
  spec, params = _reference()
  path = str(tmp_path / "evil.pkl")
  _pickle(spec, params, path, source=f"open({marker!r}, 'w').write('ran')",
          extra=[Evil(marker), {"hook": Evil(marker)}])
  with open(path, "rb") as f:   # a plain unpickler would run it: the test is live
    assert b"exec" in f.read()
  out = convert.convert(path, str(tmp_path / "g"))
  assert not os.path.exists(marker)
  assert "builtins.exec" in out["stubbed_globals"]


@pytest.mark.parametrize("content, words", [
    (b"not a pickle at all", "not a readable pickle"),
    (pickle.dumps([1, 2, 3]), "holds a list"),
    (pickle.dumps({"G": None, "D": None}), "has no G_ema"),
])
def test_bad_pickles_are_one_clear_error(tmp_path, content, words):
  path = tmp_path / "bad.pkl"
  path.write_bytes(content)
  with pytest.raises(ConfigError) as err:
    convert.convert(str(path), str(tmp_path / "out"))
  assert words in str(err.value) and err.value.field == "in.pkl"
  assert not os.path.exists(tmp_path / "out")


def test_a_network_that_is_not_a_generator_is_refused(persistence, tmp_path):
  path = tmp_path / "d.pkl"
  with open(path, "wb") as f:
    pickle.dump({"G_ema": _module("Discriminator", "")}, f)
  with pytest.raises(ConfigError, match="not a StyleGAN-XL Generator"):
    convert.convert(str(path), str(tmp_path / "out"))
  assert convert.main(["convert", str(path), str(tmp_path / "out")]) == 1
