"""AST in the distillation: representative (K-Means) init, and a run with every
refinement of the step switched on."""
import numpy as np
import pytest

from dd_jax.data import pipeline
from dd_jax.distill import representative, run
from dd_jax.distill.methods import mtt
from dd_jax.errors import ConfigError
from tests.distill.conftest import _config, _synset


def _blobs(rng, centers, per_center, spread=0.05):
  return np.concatenate([c + spread * rng.normal(size=(per_center, len(c)))
                         for c in centers])


def test_kmeans_finds_well_separated_clusters():
  rng = np.random.default_rng(0)
  centers = np.array([[0., 0.], [5., 5.], [-5., 5.]])
  x = _blobs(rng, centers, 30)
  found, assign = representative.kmeans(x, 3, seed=0)
  order = [int(np.argmin(((found - c) ** 2).sum(1))) for c in centers]
  assert sorted(order) == [0, 1, 2]
  np.testing.assert_allclose(found[order], centers, atol=0.05)
  assert len(set(assign[:30])) == len(set(assign[30:60])) == 1   # one cluster per blob
  again, _ = representative.kmeans(x, 3, seed=0)
  np.testing.assert_array_equal(found, again)                    # seeded


def test_representative_indices_are_real_images_of_their_class_nearest_the_centroids():
  rng = np.random.default_rng(1)
  # Class 0 has three blobs, class 1 two; features of the others sit far away.
  f0 = _blobs(rng, np.array([[0., 0.], [4., 0.], [0., 4.]]), 10)
  f1 = _blobs(rng, np.array([[20., 20.], [30., 20.]]), 15)
  features = np.concatenate([f0, f1])
  y = np.array([0] * 30 + [1] * 30)
  perm = rng.permutation(60)                     # classes interleaved, as real data
  features, y = features[perm], y[perm]
  idx = representative.representative_indices(features, y, 2, ipc=3, clusters=10, seed=0)
  assert y[idx].tolist() == [0, 0, 0, 1, 1, 1] and len(set(idx.tolist())) == 6
  # Class 0 (K = 3): one image from each blob, each the nearest to its blob's centre.
  blobs = sorted(tuple(np.round(features[i]).astype(int) // 4) for i in idx[:3])
  assert blobs == [(0, 0), (0, 1), (1, 0)]
  # IPC above the cluster count (the paper's IPC 50 rule): K = 2 clusters for class 1,
  # 3 images then 2 nearest each centroid, all distinct.
  idx = representative.representative_indices(features, y, 2, ipc=5, clusters=2, seed=0)
  assert y[idx].tolist() == [0] * 5 + [1] * 5 and len(set(idx.tolist())) == 10
  near_first = (features[idx[5:8], 0] < 25).all() or (features[idx[5:8], 0] > 25).all()
  assert near_first


def test_kmeans_asked_for_more_images_than_a_class_has_is_one_clear_error():
  features = np.zeros((8, 2))
  y = np.array([0] * 5 + [1] * 3)
  with pytest.raises(ConfigError, match=r"^distill\.ipc: K-Means initialisation asks for "
                                        r"4 images \(4 clusters\) of class 1, which has 3"):
    representative.representative_indices(features, y, 2, ipc=4, clusters=10, seed=0)


AST = dict(pix_init="kmeans", balance_loss=True, intermediate="equal", perturb_rho=0.1,
           inner_momentum=0.9, expert_epochs=2, max_start_epoch=1)


def test_a_run_with_every_ast_refinement_is_deterministic(shared, tmp_path):
  config = _config(*shared, **AST)
  distiller = run.Distiller(config, str(tmp_path / "a"))
  init = distiller.initial_state()
  prepared = pipeline.prepare(config.data)
  images = np.asarray(init.images)
  # Representative init: real training images, of the class each synthetic image has.
  rows = [np.flatnonzero((prepared.x_train == img).all(axis=(1, 2, 3))) for img in images]
  assert all(len(r) == 1 for r in rows)
  assert prepared.y_train[[r[0] for r in rows]].tolist() == np.asarray(init.labels).tolist()
  distiller.run()
  run.Distiller(config, str(tmp_path / "b")).run()
  a, b = _synset(str(tmp_path / "a")), _synset(str(tmp_path / "b"))
  np.testing.assert_array_equal(a["images"], b["images"])
  assert not np.allclose(a["images"], images)
  # The perturbation is part of the step: without it the set differs.
  plain = _config(*shared, **{**AST, "perturb_rho": 0.0})
  run.Distiller(plain, str(tmp_path / "c")).run()
  assert not np.allclose(_synset(str(tmp_path / "c"))["images"], a["images"])


def test_ast_switches_that_cannot_work_are_clear_errors(shared, tmp_path):
  too_many = _config(*shared, intermediate="equal", syn_steps=1, expert_epochs=2,
                     max_start_epoch=1)
  with pytest.raises(ConfigError, match=r"^distill\.intermediate: matching the 1 "
                                        r"intermediate expert epochs needs at least one"):
    run.Distiller(too_many, str(tmp_path / "a"))
  with pytest.raises(ConfigError, match=r"^distill\.perturb_rho: AST's refinements"):
    run.Distiller(_config(*shared, method="dm", perturb_rho=0.1), str(tmp_path / "b"))
  with pytest.raises(ConfigError, match=r"^distill\.balance_offset"):
    run.Distiller(_config(*shared, balance_loss=True, balance_offset=1.0),
                  str(tmp_path / "c"))
  assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_balanced_factor_is_an_argument_not_a_recompile(shared):
  d = _config(*shared, balance_loss=True, max_start_epoch=2).distill
  assert mtt.balance_scale(d, 0) == pytest.approx(1 / np.log(9))
  assert mtt.balance_scale(d, 1) == pytest.approx(np.log(8))
  assert mtt.balance_scale(_config(*shared).distill, 0) is None


def test_ast_and_pad_compose_in_one_config(tmp_path):
  from configs import fashion_mnist_ast
  from tests.conftest import write_idx_dataset
  config = fashion_mnist_ast.get_config("runlocal,pad=1")
  with config.unlocked():
    config.data.source, config.data.train_per_class = "idx", 0
    config.data.data_dir = write_idx_dataset(tmp_path / "idx")
    config.model.width, config.expert.batch_size = 8, 32
    config.distill.eval_every = 0   # soft-label evaluation is tested with PAD's config
  d, e = config.distill, config.expert
  assert (e.sam, e.data_schedule, e.momentum, e.clip_epochs, e.gp_weight) == (
      "gsam", "pad", 0.9, 5, 1.0)
  assert (d.pix_init, d.soft_labels, d.param_mask, d.balance_loss, d.intermediate,
          d.perturb_rho) == ("kmeans", True, "depth", True, "equal", 0.1)
  distiller = run.Distiller(config, str(tmp_path / "work"))
  init = distiller.initial_state()
  summary = distiller.run()
  assert "distilled 4 steps" in summary
  assert init.labels.shape == (10, 10)                   # soft labels on K-Means images
  spec = distiller.method.reader.spec
  assert {"sam", "data_schedule", "clipped_ce", "gradient_penalty"} <= set(spec)
  assert distiller.method.reader.metadata(0)["avg_var"] > 0


def test_a_refused_kmeans_init_leaves_the_workdir_free_for_a_corrected_config(shared,
                                                                              tmp_path):
  work = str(tmp_path / "w")
  with pytest.raises(ConfigError, match=r"^distill\.ipc: K-Means initialisation asks for "
                                        r"25 images \(10 clusters\) of class 0, which has 20"):
    run.Distiller(_config(*shared, pix_init="kmeans", ipc=25), work).run()
  assert not (tmp_path / "w" / "distill").exists()
  summary = run.Distiller(_config(*shared, pix_init="kmeans", ipc=2), work).run()
  assert "distilled 4 steps" in summary


@pytest.mark.parametrize("normaliser", ["perturbed", "expert"])
def test_matching_is_normalised_by_the_perturbed_start_as_eq_22_23(shared, normaliser):
  """With lr 0 the student stays at the perturbed start theta*_t: normalised by theta*_t
  (AST's Eq. 22-23, Algorithm 2) the loss is exactly 1; by the unperturbed start it is
  not (the perturbation adds to the distance)."""
  import jax
  import jax.numpy as jnp
  from dd_jax.distill import step
  from dd_jax.distill.step import StepSettings
  from tests.distill.conftest import expert_segment
  config = _config(*shared, ipc=1)
  with config.unlocked():
    config.distill.perturb_rho, config.distill.perturb_normaliser = 0.1, normaliser
  model, prepared, start, target = expert_segment(config, shared[1])
  loss, _ = step.meta_loss(model, StepSettings.from_config(config.distill),
                           jnp.asarray(prepared.x_train[:10]), jnp.float32(0.0),
                           jnp.arange(10, dtype=jnp.int32), start, target, {},
                           jax.random.PRNGKey(3))
  if normaliser == "perturbed":
    assert float(loss) == pytest.approx(1.0, abs=1e-5)
  else:
    assert float(loss) > 1.01
