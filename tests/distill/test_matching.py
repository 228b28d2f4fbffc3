"""DC and DM: the distances against hand computations, Siamese DSA, PAD's modules, runs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax import losses, models
from dd_jax.distill import matching, run
from dd_jax.errors import ConfigError
from dd_jax.models.torch_layout import TorchLayout
from tests.distill.conftest import _config, _synset


def _cos_distance(a, b):
  return 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-6)


def test_gradient_distance_is_dc_per_output_unit_and_respects_the_mask():
  rng = np.random.default_rng(0)
  gr = {"dense": {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=3)}}
  gs = {"dense": {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=3)}}
  want = sum(_cos_distance(gr["dense"]["kernel"][:, o], gs["dense"]["kernel"][:, o])
             for o in range(3))                      # biases are not matched
  got = matching.gradient_distance(jax.tree.map(jnp.asarray, gr), jax.tree.map(jnp.asarray, gs))
  np.testing.assert_allclose(float(got), want, rtol=1e-5)
  keep = np.ones((4, 3), bool)
  keep[:, 0] = False          # unit 0 fully masked: not matched
  keep[0, 1] = False          # unit 1 without its first input
  mask = {"dense": {"kernel": jnp.asarray(keep), "bias": jnp.ones(3, bool)}}
  want = (_cos_distance(gr["dense"]["kernel"][1:, 1], gs["dense"]["kernel"][1:, 1])
          + _cos_distance(gr["dense"]["kernel"][:, 2], gs["dense"]["kernel"][:, 2]))
  got = matching.gradient_distance(jax.tree.map(jnp.asarray, gr), jax.tree.map(jnp.asarray, gs),
                                   mask)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_siamese_dsa_transforms_real_and_synthetic_batches_alike():
  img = jax.random.normal(jax.random.PRNGKey(0), (1, 12, 12, 3))
  for seed in range(5):
    k = jax.random.PRNGKey(seed)
    a = matching.siamese_dsa(k, jnp.repeat(img, 4, 0), "color_crop_cutout_flip_scale_rotate")
    b = matching.siamese_dsa(k, jnp.repeat(img, 2, 0), "color_crop_cutout_flip_scale_rotate")
    np.testing.assert_allclose(np.asarray(a[1:]), np.repeat(np.asarray(a[:1]), 3, 0),
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a[:2]), atol=1e-6)


def test_dm_loss_is_zero_for_equal_means_and_counts_the_kept_blocks():
  model = models.build("ConvNet", 3, width=8)
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 28, 28, 1))
  params = model.init(jax.random.PRNGKey(1), x[0], train=False)["params"]
  key = jax.random.PRNGKey(2)
  assert float(matching.dm_loss(model, params, x, x, key, "none")) == pytest.approx(0, abs=1e-6)
  syn = x[:, :2] * 1.5
  emb = float(matching.dm_loss(model, params, x, syn, key, "none"))
  both = float(matching.dm_loss(model, params, x, syn, key, "none", blocks=(0, 1)))
  feats = [np.asarray(f) for f in matching.block_features(model, params, x[0], (0, 1))]
  fsyn = [np.asarray(f) for f in matching.block_features(model, params, syn[0], (0, 1))]
  first_class = sum(np.sum((a.mean(0) - b.mean(0)) ** 2) for a, b in zip(feats, fsyn))
  assert both > emb > 0 and first_class < both
  layout = TorchLayout.of(model, (28, 28, 1))
  shallow = losses.make_mask(layout.positions(), "depth", 0.5)
  assert matching.kept_blocks(shallow, 3) == ()           # conv0, conv1 dropped
  assert matching.kept_blocks(losses.make_mask(layout.positions(), "depth", 0.001), 3) == (0, 1)


@pytest.mark.parametrize("method, extra", [
    ("dc", {"dc_outer_loop": 2, "dc_inner_loop": 2}),
    ("dm", {"param_mask": "depth", "param_mask_ratio": 0.001}),
])
def test_dc_and_dm_runs_update_the_images_and_resume_identically(shared, tmp_path, method,
                                                                 extra):
  config = _config(*shared, method=method, batch_real=8, lr_img=1.0, iterations=4,
                   eval_every=4, **extra)
  distiller = run.Distiller(config, str(tmp_path / "a"))
  init = np.asarray(distiller.initial_state().images)
  assert "ConvNet at step 4" in distiller.run()
  assert getattr(distiller.method, "reader", None) is None   # no experts involved
  out = _synset(str(tmp_path / "a"))
  assert not np.allclose(out["images"], init) and np.isfinite(out["images"]).all()
  # Stopped after 2 steps, then continued to 4 (evaluation settings may change on resume).
  run.Distiller(_config(*shared, method=method, batch_real=8, lr_img=1.0, iterations=2,
                        eval_every=0, **extra), str(tmp_path / "b")).run()
  run.Distiller(_config(*shared, method=method, batch_real=8, lr_img=1.0, iterations=4,
                        eval_every=0, **extra), str(tmp_path / "b")).run()
  np.testing.assert_array_equal(_synset(str(tmp_path / "b"))["images"], out["images"])


def test_dc_with_static_pruning_draws_only_the_kept_samples(shared, tmp_path):
  config = _config(*shared, method="dc", batch_real=4, iterations=1, schedule_steps=1)
  with config.unlocked():
    config.expert.data_schedule = "prune"
    config.expert.schedule.update(prune="hard", prune_fraction=0.25)
  distiller = run.Distiller(config, str(tmp_path))
  ranked = distiller.method.real.ranked
  for step in (0, 7):                                   # static: every step the same
    pool = distiller.method.real.pool(step)
    assert [p.tolist() for p in pool] == [r[:15].tolist() for r in ranked]   # 20 - 5
  idx = distiller.method.real.indices(3, 2)
  hardest = {int(i) for r in ranked for i in r[15:]}
  assert not hardest & set(idx.ravel().tolist())
  assert "distilled 1 steps" in distiller.run()


def test_dc_with_both_pad_modules_follows_the_schedule(shared, tmp_path):
  config = _config(*shared, method="dc", batch_real=4, iterations=2, param_mask="depth",
                   param_mask_ratio=0.25, schedule_steps=1)
  with config.unlocked():
    config.expert.data_schedule = "pad"
    config.expert.schedule.update(initial_ratio=0.5, addition_end=4)
  distiller = run.Distiller(config, str(tmp_path))
  pool = distiller.method.real.pool(0)
  assert [len(p) for p in pool] == [10] * 10            # the easiest half of 20 per class
  idx = distiller.method.real.indices(0, 1)
  assert all(set(idx[0, c]) <= set(pool[c]) for c in range(10))
  assert "distilled 2 steps" in distiller.run()


def test_dc_and_dm_refuse_what_needs_trajectories(shared, tmp_path):
  for extra, field in [({"soft_labels": True}, "distill.method"),
                       ({"pix_init": "correct"}, "distill.method"),
                       ({"param_mask": "loss", "param_mask_ratio": 0.1}, "distill.param_mask"),
                       ({"param_mask": "deep", "param_mask_ratio": 0.1}, "distill.param_mask"),
                       ({"method": "kip"}, "distill.method")]:
    config = _config(*shared, **{"method": "dm", **extra})
    with pytest.raises(ConfigError, match=rf"^{field}: "):
      run.Distiller(config, str(tmp_path / "x"))
  assert not (tmp_path / "x").exists()
