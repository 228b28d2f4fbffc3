"""IDC's condensation (distill/idc.py): the mix initialisation, the gradient distance,
the batch-shared augmentation, CutMix, where the gradients go, and a run end to end."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import fashion_mnist_idc
from dd_jax import models
from dd_jax.data import indexing
from dd_jax.distill import idc, multiformation, run, workdir
from dd_jax.errors import ConfigError
from tests.distill.conftest import _synset


def test_mix_init_decodes_to_the_drawn_real_images_in_order():
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(60, 8, 8, 1)).astype(np.float32)
  y = np.repeat(np.arange(3), 20)
  ipc, f = 2, 2
  stored, labels = idc.mix_init(x, y, 3, ipc, f, seed=4)
  assert stored.shape == (3 * ipc, 8, 8, 1) and labels.tolist() == [0, 0, 1, 1, 2, 2]
  drawn = x[indexing.sample_per_class(y, 3, ipc * f * f, seed=4)]
  for c in range(3):
    decoded_tiles = np.asarray(multiformation.decode(
        jnp.asarray(stored[c * ipc:(c + 1) * ipc]), f))
    for d in range(ipc * f * f):   # decoded image d is drawn image d of the class, shrunk
      small = drawn[c * ipc * f * f + d][::f, ::f]
      tile_of = (d // ipc) // f, (d // ipc) % f
      stored_img = stored[c * ipc + d % ipc]
      np.testing.assert_array_equal(
          stored_img[tile_of[0] * 4:(tile_of[0] + 1) * 4, tile_of[1] * 4:(tile_of[1] + 1) * 4],
          small)
      assert decoded_tiles[d].shape == (8, 8, 1)


def test_kernel_distance_sums_only_the_conv_kernels():
  a = {"conv": jnp.ones((3, 3, 1, 2)), "bias": jnp.ones((2,)), "dense": jnp.ones((4, 2))}
  b = {"conv": jnp.zeros((3, 3, 1, 2)).at[0, 0, 0, 0].set(3.0), "bias": jnp.zeros((2,)),
       "dense": jnp.zeros((4, 2))}
  # 17 entries differ by 1, one by -2.
  assert float(idc.kernel_distance(a, b, "l1")) == pytest.approx(17 + 2)
  assert float(idc.kernel_distance(a, b, "mse")) == pytest.approx(17 + 4)


@pytest.mark.parametrize("strategy", ["color_crop_cutout", "color_crop"])
def test_a_shared_draw_transforms_every_image_alike_and_per_sample_draws_do_not(strategy):
  img = jax.random.normal(jax.random.PRNGKey(1), (1, 12, 12, 1))
  batch = jnp.concatenate([img] * 6)
  key = jax.random.PRNGKey(7)
  shared = idc.augment_all(key, batch, strategy, shared=True)
  np.testing.assert_allclose(shared, jnp.broadcast_to(shared[:1], shared.shape), atol=1e-6)
  assert not np.allclose(shared[0], batch[0])   # it did transform them
  own = idc.augment_all(key, batch, strategy, shared=False)
  assert not np.allclose(own[0], own[1])


def _settings(**kw):
  fields = dict(num_classes=3, ipc=2, factor=2, distance="mse", matches=1, batch_real=4,
                max_syn=8, lr_img=0.1, img_momentum=0.0, match_strategy="color_crop_cutout",
                net_strategy="color_crop", net_lr=0.01, net_momentum=0.9,
                net_weight_decay=5e-4, net_steps=1, cutmix_prob=0.5, clip=None,
                grad_scale=None)
  fields.update(kw)
  return idc.IDCSettings(**fields)


def _net(image_shape=(8, 8, 1), classes=3):
  config = fashion_mnist_idc.get_config("runlocal")
  with config.unlocked():
    config.model.width = 4
  model = models.from_config(config.model, classes)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1,) + image_shape), train=False)
  return model, params["params"]


@pytest.mark.parametrize("max_syn", [8, 5])
def test_a_class_loss_sends_gradients_to_that_class_stored_images_only(max_syn):
  model, params = _net()
  s = _settings(max_syn=max_syn)
  images = jax.random.normal(jax.random.PRNGKey(2), (6, 8, 8, 1))
  real = jax.random.normal(jax.random.PRNGKey(3), (4, 8, 8, 1))
  g = jax.grad(idc.class_match_loss, argnums=2)(model, s, images, params, real, 1,
                                                jax.random.PRNGKey(4))
  norms = np.asarray(jnp.sqrt(jnp.sum(g * g, axis=(1, 2, 3))))
  assert norms[0] == norms[1] == norms[4] == norms[5] == 0.0
  assert norms[2] > 0 and norms[3] > 0   # class 1: stored images 2 and 3


def test_the_step_clips_first_and_moves_images_in_pixel_units():
  model, params = _net()
  del params
  x = jax.random.normal(jax.random.PRNGKey(5), (30, 8, 8, 1))
  y = jnp.repeat(jnp.arange(3), 10).astype(jnp.int32)
  from dd_jax.distill import state as state_lib
  config = fashion_mnist_idc.get_config("runlocal")
  images = 5.0 * jax.random.normal(jax.random.PRNGKey(6), (6, 8, 8, 1))
  labels = np.repeat(np.arange(3, dtype=np.int32), 2)
  state = state_lib.create(config.distill, images, labels, 0)
  real = jnp.zeros((1, 3, 4), jnp.int32) + jnp.arange(3)[None, :, None] * 10
  net_idx = jnp.zeros((1, 1, 4), jnp.int32)
  clip = ((-1.0,), (1.0,))
  outs = {}
  for scale in (1.0, 4.0):   # 1 / std^2 = 4: the same step, four times as far
    s = _settings(lr_img=0.1, clip=clip, grad_scale=(scale,))
    step = jax.jit(idc.make_step(model, s))
    outs[scale], metrics = step(state, idc.Draw(real, net_idx), idc.RealData(x, y))
    assert bool(metrics["finite"])
  start = jnp.clip(images, -1.0, 1.0)
  d1 = outs[1.0].images - start
  d4 = outs[4.0].images - start
  assert float(jnp.max(jnp.abs(d1))) > 0
  # Exact up to the float32 rounding of the stored images (|x| <= 1: ulp 1.2e-7).
  np.testing.assert_allclose(d4, 4.0 * d1, rtol=1e-4, atol=5e-7)


def test_a_given_matching_net_start_replaces_the_fresh_one():
  model, _ = _net()
  x = jax.random.normal(jax.random.PRNGKey(5), (30, 8, 8, 1))
  y = jnp.repeat(jnp.arange(3), 10).astype(jnp.int32)
  from dd_jax.distill import state as state_lib
  config = fashion_mnist_idc.get_config("runlocal")
  images = jax.random.normal(jax.random.PRNGKey(6), (6, 8, 8, 1))
  state = state_lib.create(config.distill, images, np.repeat(np.arange(3, dtype=np.int32), 2), 0)
  real = jnp.zeros((1, 3, 4), jnp.int32) + jnp.arange(3)[None, :, None] * 10
  net_idx = jnp.zeros((1, 1, 4), jnp.int32)
  step = jax.jit(idc.make_step(model, _settings()))
  fresh, _ = step(state, idc.Draw(real, net_idx), idc.RealData(x, y))
  # The net the step would draw itself, given: the same step, bit for bit ...
  kinit = jax.random.split(jax.random.split(state.rng)[0])[0]
  own = model.init(kinit, x[:1], train=False)["params"]
  given, _ = step(state, idc.Draw(real, net_idx, own), idc.RealData(x, y))
  np.testing.assert_array_equal(given.images, fresh.images)
  # ... another net, another step.
  other = model.init(jax.random.PRNGKey(11), x[:1], train=False)["params"]
  moved, _ = step(state, idc.Draw(real, net_idx, other), idc.RealData(x, y))
  assert not np.allclose(moved.images, fresh.images)


def test_one_matching_net_start_serves_a_block_of_outer_steps():
  model, _ = _net()
  sample = jnp.zeros((1, 8, 8, 1))
  calls = []

  def warm(model_, key, sample_):
    calls.append(np.asarray(jax.random.key_data(key)).tolist())
    return model_.init(key, sample_, train=False)["params"], {}

  for warm_start in (None, warm):
    net = idc.NetInit(model, sample, fix_iter=3, seed=0, step_offset=5, warm_start=warm_start)
    blocks = [net(step) for step in range(7)]     # steps 0-2, 3-5, 6
    assert blocks[0] is blocks[2] and blocks[3] is blocks[5]
    leaf = lambda p: np.asarray(jax.tree.leaves(p)[0])
    assert not np.array_equal(leaf(blocks[0]), leaf(blocks[3]))
    again = idc.NetInit(model, sample, fix_iter=3, seed=0, step_offset=5,
                        warm_start=warm_start)   # a resumed run: the same nets
    np.testing.assert_array_equal(leaf(again(4)), leaf(blocks[3]))
    other = idc.NetInit(model, sample, fix_iter=3, seed=0, step_offset=9)   # next subset
    assert not np.array_equal(leaf(other(0)), leaf(blocks[0]))
  assert len(calls) == 4 and calls[0] != calls[1]   # warm-started once per block
  assert not idc.NetInit.needed(1, None) and idc.NetInit.needed(2, None)
  assert idc.NetInit.needed(1, warm)


def test_an_idc_run_is_deterministic_and_exports_the_decoded_set(shared, tmp_path):
  from tests.conftest import tiny_idx_config
  outs = []
  for name in ("a", "b"):
    config = fashion_mnist_idc.get_config("runlocal")
    tiny = tiny_idx_config(shared[0])
    with config.unlocked():
      config.data = tiny.data
      config.model.width = 8
      config.distill.iterations, config.distill.eval_every = 2, 0
    run.distill(config, str(tmp_path / name))
    outs.append(_synset(str(tmp_path / name)))
  a, b = outs
  assert a["images"].shape[0] == 4 * 10   # 1 stored image per class, 4 decoded each
  assert a["labels"].tolist() == list(range(10)) * 4
  np.testing.assert_array_equal(a["images"], b["images"])


@pytest.mark.parametrize("field, value, words", [
    ("idc.factor", 3, "does not divide"),
    ("idc.distance", "cosine", "unknown"),
    ("distill.param_mask", "depth", "no parameter mask"),
    ("distill.pix_init", "noise", "real images"),
    ("idc.fix_iter", 0, "is 0"),
])
def test_bad_idc_settings_are_clear_errors_before_anything_is_written(shared, tmp_path,
                                                                      field, value, words):
  from tests.conftest import tiny_idx_config
  config = fashion_mnist_idc.get_config("runlocal")
  with config.unlocked():
    config.data = tiny_idx_config(shared[0]).data
    section, name = field.split(".")
    config[section][name] = value
  with pytest.raises(ConfigError) as e:
    run.distill(config, str(tmp_path / "run"))
  assert e.value.field == field and words in str(e.value), str(e.value)
  assert not (tmp_path / "run" / "distill").exists()


def test_the_idc_section_is_part_of_an_idc_runs_identity_only(shared):
  from dd_jax.data import pipeline
  from tests.conftest import tiny_idx_config
  mtt = tiny_idx_config(shared[0])
  prepared = pipeline.prepare(mtt.data)
  assert "idc" not in workdir.run_identity(mtt, prepared)["config"]   # older runs resume
  config = fashion_mnist_idc.get_config("runlocal")
  with config.unlocked():
    config.data = mtt.data
  identity = workdir.run_identity(config, prepared)["config"]["idc"]
  assert identity["factor"] == 2 and "fix_iter" not in identity   # the default: older runs
  with config.unlocked():
    config.idc.fix_iter = 50
  assert workdir.run_identity(config, prepared)["config"]["idc"]["fix_iter"] == 50


def test_fields_added_in_2026_12_leave_other_runs_identity_alone(shared):
  """A run begun before the H-PD, held-out and static-pruning fields existed resumes."""
  from dd_jax.data import pipeline
  from tests.conftest import tiny_idx_config
  mtt = tiny_idx_config(shared[0])
  identity = workdir.run_identity(mtt, pipeline.prepare(mtt.data))["config"]
  assert "hpd" not in identity and "holdout_per_class" not in identity["data"]
  assert not {"prune", "prune_fraction"} & set(identity["expert"]["schedule"])
  with mtt.unlocked():
    mtt.expert.data_schedule, mtt.data.holdout_per_class = "prune", 2
  identity = workdir.run_identity(mtt, pipeline.prepare(mtt.data))["config"]
  assert identity["expert"]["schedule"]["prune"] == "hard"
  assert identity["data"]["holdout_per_class"] == 2


def test_a_run_recorded_with_then_neutral_fields_resumes(shared, tmp_path):
  """A run.json written while the fields above were still recorded at their neutral
  values (holdout 0, an hpd section on a pixel run) is accepted; a real difference is
  still refused."""
  import json
  from dd_jax.data import pipeline
  from tests.conftest import tiny_idx_config
  mtt = tiny_idx_config(shared[0])
  prepared = pipeline.prepare(mtt.data)
  identity = workdir.run_identity(mtt, prepared)
  stored = json.loads(json.dumps(identity))
  stored["config"]["data"]["holdout_per_class"] = 0
  stored["config"]["hpd"] = {"layers_per_space": 2}
  (tmp_path / "run.json").write_text(json.dumps(stored))
  workdir.check_workdir(str(tmp_path), identity)   # resumes
  stored["config"]["data"]["holdout_per_class"] = 5
  (tmp_path / "run.json").write_text(json.dumps(stored))
  with pytest.raises(ConfigError, match=r"holdout_per_class \(stored 5, config None\)"):
    workdir.check_workdir(str(tmp_path), identity)


def test_earlier_subsets_join_a_class_loss_without_taking_gradients():
  model, params = _net()
  s = _settings(frozen_per_class=1, max_syn=100)
  images = jax.random.normal(jax.random.PRNGKey(2), (6, 8, 8, 1))
  frozen = jax.random.normal(jax.random.PRNGKey(8), (3, 8, 8, 1))
  real = jax.random.normal(jax.random.PRNGKey(3), (4, 8, 8, 1))
  key = jax.random.PRNGKey(4)
  loss = lambda fz: idc.class_match_loss(model, s, images, params, real, 1, key, fz)
  assert float(loss(frozen)) != float(loss(frozen.at[1].multiply(-1.0)))   # class 1's joins
  assert float(loss(frozen)) == float(loss(frozen.at[0].multiply(-1.0)))   # class 0's not
  assert float(jnp.max(jnp.abs(jax.grad(loss)(frozen)))) == 0.0


def test_seqmatch_on_idc_freezes_subset_one_and_exports_rows_subset_after_subset(shared,
                                                                               tmp_path):
  from dd_jax.evaluate import run as eval_run
  from dd_jax.metadata import read_npz
  from tests.conftest import tiny_idx_config
  config = fashion_mnist_idc.get_config("runlocal,seq=1")
  with config.unlocked():
    config.data = tiny_idx_config(shared[0]).data
    config.model.width = 8
    config.distill.eval_every = 0
  work = str(tmp_path / "seq")
  run.distill(config, work)
  first = read_npz(str(tmp_path / "seq" / "distill" / "subset_1.npz"))
  initial = read_npz(str(tmp_path / "seq" / "distill" / "initial.npz"))
  assert not np.array_equal(first["images"], initial["images"][::2])   # subset 1 moved
  out = _synset(work)
  decoded_first = np.asarray(multiformation.decode(jnp.asarray(first["images"]), 2))
  np.testing.assert_array_equal(out["images"][:40], decoded_first)   # bit-identical
  stages = eval_run.sequential_stages(str(tmp_path / "seq" / "synset.npz"), 10)
  assert [len(x) for x, _, _ in stages] == [40, 80]


def test_warm_started_seqmatch_idc_starts_subset_two_from_a_net_trained_on_subset_one(
    shared, tmp_path, monkeypatch):
  from dd_jax.distill import seqmatch
  from dd_jax.metadata import read_npz
  from tests.conftest import tiny_idx_config
  config = fashion_mnist_idc.get_config("runlocal,seq=1,warm=1")
  assert config.seqmatch.experts == "warm_start" and config.idc.fix_iter == 50
  with config.unlocked():
    config.data = tiny_idx_config(shared[0]).data
    config.model.width = 8
    config.distill.eval_every = 0
  starts = []
  real_call = seqmatch.WarmStart.__call__

  def spy(self, model, key, sample):
    params = real_call(self, model, key, sample)
    starts.append((self.stages, params[0], model.init(key, sample, train=False)["params"]))
    return params

  monkeypatch.setattr(seqmatch.WarmStart, "__call__", spy)
  run.distill(config, str(tmp_path / "seq"))
  # One block of 50 covers subset 2's steps: one warm start, on subset 1 decoded.
  assert len(starts) == 1
  [(images, labels, lr)], trained, fresh = starts[0]
  first = read_npz(str(tmp_path / "seq" / "distill" / "subset_1.npz"))
  np.testing.assert_array_equal(
      images, np.asarray(multiformation.decode(jnp.asarray(first["images"]), 2)))
  assert labels.tolist() == first["labels"].tolist() * 4 and lr == float(first["lr"])
  # The net was trained from its fresh start.
  assert not all(np.array_equal(a, b) for a, b in
                 zip(jax.tree.leaves(trained), jax.tree.leaves(fresh)))
  with pytest.raises(ValueError, match="seq=1"):
    fashion_mnist_idc.get_config("runlocal,warm=1")
