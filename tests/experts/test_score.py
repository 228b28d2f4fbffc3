"""EL2N difficulty scores and their per-class rankings."""
import jax.numpy as jnp
import numpy as np
import pytest

from configs import fashion_mnist_mtt
from dd_jax.data import pipeline, sources
from dd_jax.errors import ConfigError
from dd_jax.experts import score
from tests.conftest import make_images


def test_el2n_is_the_norm_of_the_error_vector():
  logits = jnp.array([[20.0, -20.0, -20.0], [-20.0, 20.0, -20.0], [0.0, 0.0, 0.0]])
  got = score.el2n(logits, jnp.array([0, 0, 2]))
  np.testing.assert_allclose(got, [0.0, np.sqrt(2.0), np.sqrt(2 / 3)], atol=1e-6)


def test_uncertainty_scores_are_least_confidence_and_entropy_of_the_prediction():
  logits = jnp.array([[20.0, -20.0, -20.0], [0.0, 0.0, 0.0], [np.log(2.0), 0.0, -50.0]])
  labels = jnp.array([1, 0, 2])                    # the label plays no part
  np.testing.assert_allclose(score.least_confidence(logits, labels), [0.0, 2 / 3, 1 / 3],
                             atol=1e-6)
  np.testing.assert_allclose(score.entropy(logits, labels),
                             [0.0, np.log(3.0), np.log(3.0) - 2 / 3 * np.log(2.0)],
                             atol=1e-5)


def _prepared(flip):
  x, y = make_images(20, seed=0)
  y = y.astype(np.int32)
  y[flip] = (y[flip] + 5) % 10                    # one mislabelled sample
  xt, yt = make_images(2, seed=1)
  ds = sources.from_arrays("toy", x[..., None], y, xt[..., None], yt.astype(np.int32), 10)
  config = fashion_mnist_mtt.get_config("runlocal")
  with config.unlocked():
    config.data.train_per_class = 0
    config.model.width = 8
    config.score.epochs = 6
    config.score.lr = 0.05
    config.score.batch_size = 32
  return config, pipeline.prepare(config.data, ds)


def test_a_mislabelled_sample_ranks_hardest_in_its_class(tmp_path):
  config, prepared = _prepared(flip=17)
  path = score.compute_scores(config, str(tmp_path), prepared)
  ranking = score.load_ranking(path, prepared, "expert.schedule.scores")
  label = int(prepared.y_train[17])
  assert ranking[label][-1] == 17                   # hardest of its (wrong) class
  assert sorted(np.concatenate(ranking).tolist()) == list(range(200))
  assert all(np.all(prepared.y_train[r] == c) for c, r in enumerate(ranking))
  _, other = _prepared(flip=3)                      # other labels: another dataset
  with pytest.raises(ConfigError, match=r"^expert\.schedule\.scores: .* computed for "
                                        r"other data: fingerprint"):
    score.load_ranking(path, other, "expert.schedule.scores")


@pytest.mark.parametrize("method", ["loss", "grand"])
def test_loss_and_grand_scores_also_rank_a_mislabelled_sample_hardest(tmp_path, method):
  config, prepared = _prepared(flip=17)
  with config.unlocked():
    config.score.method = method
  path = score.compute_scores(config, str(tmp_path), prepared)
  assert path.endswith(f"{method}.npz")
  ranking = score.load_ranking(path, prepared, "expert.schedule.scores")
  assert ranking[int(prepared.y_train[17])][-1] == 17


@pytest.mark.parametrize("method", ["uncertainty", "entropy"])
def test_uncertainty_scores_run_end_to_end_within_their_range(tmp_path, method):
  config, prepared = _prepared(flip=17)
  with config.unlocked():
    config.score.method, config.score.num_models = method, 1
  path = score.compute_scores(config, str(tmp_path), prepared)
  assert path.endswith(f"{method}.npz")
  got = np.load(path)["scores"]
  top = 0.9 if method == "uncertainty" else np.log(10.0)    # 1 - 1/C, log C
  assert got.shape == (200,) and (got >= 0).all() and (got <= top + 1e-6).all()
  assert got.std() > 0                                      # it tells samples apart
