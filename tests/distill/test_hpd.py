"""H-PD: GLaD's latents optimised layer by layer, f advanced one layer at a time, every
layer's latents recorded with the class-relevant feature distance, the best exported."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from dd_jax import models
from dd_jax.distill import hpd, run
from tests.distill.conftest import _config, _synset


def _hpd(shared):
  config = _config(*shared, ipc=1, parameterization="hpd")
  with config.unlocked():
    g = config.gan
    g.prior, g.resolution, g.num_layers, g.channel_base = "random", 16, 3, 64
    g.channel_max, g.w_dim, g.z_dim = 8, 16, 8
    config.glad.chunk = 5
    config.hpd.start_layer, config.hpd.steps_per_layer, config.hpd.real_per_class = 2, 2, 5
  return config


def _load(path):
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def test_layers_run_in_order_carrying_ws_and_the_best_layer_is_exported(shared, tmp_path):
  config = _hpd(shared)
  with config.unlocked():
    config.distill.eval_every = 2
  work = str(tmp_path / "hpd")
  summary = run.distill(config, work)
  layers = [_load(os.path.join(work, "distill", f"layer_{k}.npz")) for k in (2, 3)]
  assert layers[0]["f"].shape != layers[1]["f"].shape      # f moved through layer 2
  # ws up to k gets no gradient at layer k: layer 3 kept layer 2's ws[:, :4].
  np.testing.assert_array_equal(layers[1]["ws"][:, :4], layers[0]["ws"][:, :4])
  assert not np.array_equal(layers[1]["ws"], layers[0]["ws"])      # the rest moved on
  with open(os.path.join(work, "distill", "hpd.json")) as f:
    record = json.load(f)
  distances = [r["distance"] for r in record["layers"]]
  assert [r["layer"] for r in record["layers"]] == [2, 3] and all(d >= 0 for d in distances)
  best = record["layers"][int(np.argmin(distances))]["layer"]
  assert record["chosen"]["layer"] == best and f"layer {best} chosen" in summary
  got = _synset(work)
  assert got["images"].shape == (10, 28, 28, 1) and f'"layer": {best}' in got["meta"].item()
  # Each layer's evaluations count their steps on from the earlier layers' (the report's
  # accuracy curve shares the loss curves' x axis).
  with open(os.path.join(work, "distill", "layer_3", "evals.json")) as f:
    evals = json.load(f)
  per_layer = config.hpd.steps_per_layer
  assert [e["global_step"] - e["step"] for e in evals] == [per_layer] * len(evals)
  # A second call finds every layer done and changes nothing.
  run.distill(config, work)
  np.testing.assert_array_equal(_synset(work)["images"], got["images"])


def test_cam_features_of_a_convnet_are_relu_class_weights_times_features():
  model = models.build("ConvNet", 3, width=4, depth=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 8, 8, 1))
  params = model.init(jax.random.PRNGKey(1), x, train=False)["params"]
  y = jnp.array([0, 1, 2, 1, 0])
  cam = hpd.cam_features(model, params, x, y)
  feats = model.apply({"params": params}, x, train=False, features=True)
  want = jax.nn.relu(params["fc"]["kernel"].T[y]) * feats
  np.testing.assert_allclose(cam, want, rtol=1e-6)
  assert hpd.class_relevant_distance(model, params, x, y, x, y, 3) == 0.0
  assert hpd.class_relevant_distance(model, params, x, y, x * 2 + 1, y, 3) > 0.0
