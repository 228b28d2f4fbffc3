"""H-PD: GLaD's latents optimised space by space, each space's best latents (by the
class-relevant feature distance) carried on, the final set chosen by distance or by
accuracy on held-out training images."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

import pytest

from dd_jax import models
from dd_jax.distill import hpd, hpd_select, run
from dd_jax.distill.methods import latents
from dd_jax.errors import ConfigError
from tests.distill.conftest import _config, _synset


def _hpd(shared):
  config = _config(*shared, ipc=1, parameterization="hpd")
  with config.unlocked():
    g = config.gan
    g.prior, g.resolution, g.num_layers, g.channel_base = "random", 16, 3, 64
    g.channel_max, g.w_dim, g.z_dim = 8, 16, 8
    config.glad.chunk = 5
    config.hpd.start_layer, config.hpd.steps_per_layer, config.hpd.real_per_class = 2, 2, 5
    config.hpd.distance_epochs, config.hpd.record_every = 1, 1
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


def test_the_released_codes_setting_trains_no_distance_net(shared, tmp_path):
  """No search within a space and the last space's set (code=1): nothing reads the
  class-relevant distance, so no CAM net is trained for it."""
  config = _hpd(shared)
  with config.unlocked():
    config.hpd.record_every, config.hpd.select = 0, "last"
  work = str(tmp_path / "hpd")
  summary = run.distill(config, work)
  assert "H-PD: layer 3 chosen (last)" in summary
  with open(os.path.join(work, "distill", "hpd.json")) as f:
    record = json.load(f)
  assert record["chosen"]["layer"] == 3
  assert all(np.isnan(r["distance"]) for r in record["layers"])
  assert not os.path.exists(os.path.join(work, "hpd"))   # no distance_net_*.msgpack


def test_each_space_keeps_its_best_latents_by_distance_across_a_resume(tmp_path):
  scores = iter([3.0, 1.0, 2.0, 5.0])

  class Fake:
    def synset(self, state):
      return np.zeros((2, 4, 4, 1)), np.array([0, 1])

    def syn_lr(self, state):
      return 0.01

  class State:
    def __init__(self, v):
      self.images = {"ws": np.full((2, 3), v), "f": np.full((2, 1), v)}
      self.labels = np.array([0, 1])

  best = hpd.BestLatents(str(tmp_path / "best.npz"), record_every=2, iterations=5,
                         score=lambda images, labels: next(scores))
  for done in range(6):          # scored at 0, 2, 4 and the last step, 5
    best.offer(Fake(), State(done), done)
  got = np.load(tmp_path / "best.npz")
  assert (int(got["step"]), float(got["distance"])) == (2, 1.0)
  assert (got["ws"] == 2).all()
  resumed = hpd.BestLatents(best.path, 2, 5, score=lambda *_: 1.5)   # worse: kept
  resumed.offer(Fake(), State(9), 4)
  assert int(np.load(best.path)["step"]) == 2
  # Table 15's other basis: the step's matching loss (the start has none: not ranked)
  by_loss = hpd.BestLatents(str(tmp_path / "loss.npz"), 1, 3, score=None, by_loss=True)
  by_loss.offer(Fake(), State(0), 0)
  assert not os.path.exists(by_loss.path)
  for done, loss in ((1, 0.7), (2, 0.4), (3, 0.9)):
    by_loss.offer(Fake(), State(done), done, {"loss": loss})
  assert (int(np.load(by_loss.path)["step"]), float(np.load(by_loss.path)["distance"])) == (
      2, 0.4)


def test_spaces_group_layers_and_a_grouping_that_does_not_divide_is_refused(shared):
  config = _hpd(shared)
  with config.unlocked():
    config.hpd.start_layer, config.hpd.layers_per_space = 1, 2
  assert latents.spaces(config, 5) == [1, 3]
  with pytest.raises(ConfigError, match=r"^hpd\.layers_per_space: 2 does not divide the 3 "
                                        r"generator layers from hpd\.start_layer=1"):
    latents.validate_hpd(config, 4)
  with config.unlocked():
    config.hpd.select = "accuracy"
  with pytest.raises(ConfigError, match=r"^hpd\.select: .accuracy. .*data\.holdout_per_class is 0"):
    latents.validate_hpd(config)


def test_spaces_of_two_layers_and_the_choice_by_held_out_accuracy(shared, tmp_path):
  config = _hpd(shared)
  with config.unlocked():
    config.distill.update(method="dm", batch_real=8)
    config.glad.lr_w, config.glad.lr_f = 1e-2, 10.0
    config.hpd.start_layer, config.hpd.layers_per_space, config.hpd.select = 0, 2, "accuracy"
    config.hpd.select_nets, config.hpd.select_epochs = 1, 3
    config.data.holdout_per_class = 3
  work = str(tmp_path / "hpd")
  summary = run.distill(config, work)
  layers = [_load(os.path.join(work, "distill", f"layer_{k}.npz")) for k in (0, 2)]
  assert not os.path.exists(os.path.join(work, "distill", "layer_1.npz"))
  with open(os.path.join(work, "distill", "hpd.json")) as f:
    record = json.load(f)
  accuracies = [r["accuracy"] for r in record["layers"]]
  assert [r["layer"] for r in record["layers"]] == [0, 2]
  assert all(0.0 <= a <= 1.0 for a in accuracies)
  assert record["chosen"]["layer"] == [0, 2][int(np.argmax(accuracies))]
  assert f"layer {record['chosen']['layer']} chosen (accuracy" in summary
  assert layers[1]["ws"].shape == layers[0]["ws"].shape


def test_cam_features_of_a_convnet_are_relu_class_weights_times_features():
  model = models.build("ConvNet", 3, width=4, depth=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 8, 8, 1))
  params = model.init(jax.random.PRNGKey(1), x, train=False)["params"]
  y = jnp.array([0, 1, 2, 1, 0])
  net = hpd_select.CamNet(model, {"params": params}, pooled=False)
  cam = hpd_select.cam_features(net, x, y)
  feats = model.apply({"params": params}, x, train=False, features=True)
  want = jax.nn.relu(params["fc"]["kernel"].T[y]) * feats
  np.testing.assert_allclose(cam, want, rtol=1e-6)
  assert hpd_select.class_relevant_distance(net, x, y, x, y, 3) == 0.0
  assert hpd_select.class_relevant_distance(net, x, y, x * 2 + 1, y, 3) > 0.0


def test_cam_of_a_globally_pooled_resnet_weights_its_feature_maps_by_the_class():
  """hpd.txt Eq. 5-6 with a net that pools before its head: d logit_c / d map is
  W_c / (h w) at every position, so the CAM is each image's map weighted by its class."""
  model = models.build("ResNet18", 3)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 16, 16, 3))
  variables = model.init(jax.random.PRNGKey(1), x, train=False)
  y = jnp.array([0, 1, 2, 1])
  net = hpd_select.CamNet(model, variables, pooled=True)
  cam = hpd_select.cam_features(net, x, y)
  maps = model.apply(variables, x, train=False, features=True)          # [4, 2, 2, 512]
  w = variables["params"]["fc"]["kernel"].T[y] / (maps.shape[1] * maps.shape[2])
  want = (jax.nn.relu(w)[:, None, None, :] * maps).reshape(4, -1)
  np.testing.assert_allclose(cam, want, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(model.apply(variables, x, train=False),
                             maps.mean((1, 2)) @ variables["params"]["fc"]["kernel"]
                             + variables["params"]["fc"]["bias"], rtol=1e-5, atol=1e-5)
  other = hpd_select.cam_features(net, x[::-1], y)
  assert not np.allclose(cam, other)                   # the CAM follows the input
  with pytest.raises(ConfigError, match=r"^hpd\.distance_net: 'ConvNet' has no global pooling"):
    config = _hpd_config_with(distance_net="ConvNet")
    hpd_select.validate(config)


def _hpd_config_with(**hpd_fields):
  from configs import fashion_mnist_hpd
  config = fashion_mnist_hpd.get_config("ipc=1,runlocal")
  with config.unlocked():
    config.hpd.update(hpd_fields)
  return config


def test_an_imagenet_cam_net_reads_the_datas_classes_through_the_class_map(tmp_path):
  from dd_jax.models import imagenet
  model, variables = imagenet.template()
  variables = jax.tree.map(lambda a: np.random.default_rng(0).normal(size=a.shape)
                           .astype(np.float32) * 0.05, variables)
  variables["batch_stats"] = jax.tree.map(np.abs, variables["batch_stats"])
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 32, 32, 3))
  y = jnp.array([0, 1, 2])
  mapped = hpd_select.CamNet(model, variables, pooled=True, class_index=(7, 217, 482))
  direct = hpd_select.CamNet(model, variables, pooled=True)
  np.testing.assert_allclose(hpd_select.cam_features(mapped, x, y),
                             hpd_select.cam_features(direct, x, jnp.array([7, 217, 482])))
  missing = _hpd_config_with(distance_net=str(tmp_path / "r18.msgpack"))
  with pytest.raises(ConfigError, match=r"^hpd\.distance_net: .* does not exist"):
    hpd_select.validate(missing)
  (tmp_path / "r18.msgpack").write_bytes(b"")
  with pytest.raises(ConfigError, match=r"^gan\.class_map: an ImageNet CAM net needs"):
    hpd_select.validate(missing)
