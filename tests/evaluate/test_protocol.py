"""The evaluation protocol: learns, is seeded, treats soft labels as the paper does."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dd_jax import training
from dd_jax.data import preprocess
from dd_jax.evaluate import evaluate_synset, protocol
from tests.conftest import make_images

SMALL = ml_collections.ConfigDict({"arch": "ConvNet", "width": 8, "depth": 2,
                                   "norm": "instancenorm", "pooling": "avgpooling",
                                   "activation": "relu", "conv_impl": "auto",
                                   "hidden": (16,)})


def _data():
  x, y = make_images(10, seed=0)
  xt, yt = make_images(5, seed=1)
  pre = preprocess.fit(x[..., None])
  return pre.apply(x[..., None]), y.astype(np.int32), pre.apply(xt[..., None]), yt.astype(np.int32)


def _evaluate(x, y, xt, yt, **kw):
  args = dict(num_classes=10, model_config=SMALL, lr=0.01, epochs=30, batch_size=32,
              dsa_strategy="none", num_nets=2, seed=0)
  args.update(kw)
  return evaluate_synset(x, y, xt, yt, **args)


def test_nets_learn_a_separable_problem_and_are_seeded():
  x, y, xt, yt = _data()
  r = _evaluate(x, y, xt, yt)
  assert r.accuracies.shape == (2,) and r.mean >= 0.9, r.summary()
  np.testing.assert_array_equal(r.accuracies, _evaluate(x, y, xt, yt).accuracies)
  untrained = _evaluate(x, y, xt, yt, epochs=1, lr=1e-6)
  assert untrained.mean < 0.5


@pytest.mark.parametrize("recipe", sorted(protocol.RECIPES))
def test_sharp_soft_labels_train_exactly_like_hard_labels(recipe):
  x, y, xt, yt = _data()
  soft = 1000.0 * jax.nn.one_hot(y, 10)   # softmax is exactly one-hot in float32
  hard = _evaluate(x, y, xt, yt, epochs=3, dsa_strategy="color_crop", protocol=recipe)
  softr = _evaluate(x, np.asarray(soft), xt, yt, epochs=3, dsa_strategy="color_crop",
                    protocol=recipe)
  np.testing.assert_array_equal(hard.accuracies, softr.accuracies)
  np.testing.assert_allclose(hard.train_loss, softr.train_loss, rtol=1e-6)


def test_soft_cross_entropy_is_the_papers_formula():
  logits = jnp.array([[1.0, 2.0, 0.5]])
  targets = jnp.array([[0.3, -1.0, 2.0]])
  expected = -np.sum(jax.nn.log_softmax(logits) * jax.nn.softmax(targets))
  np.testing.assert_allclose(training.cross_entropy(logits, targets), [expected], rtol=1e-6)


def test_batch_plan_visits_every_sample_once_per_epoch():
  idx, mask = training.batch_plan(jax.random.PRNGKey(0), 10, 4)
  assert idx.shape == (3, 4) and int(mask.sum()) == 10
  assert sorted(np.asarray(idx)[np.asarray(mask)].tolist()) == list(range(10))


def test_repeated_evaluations_reuse_one_compilation():
  x, y, xt, yt = _data()
  _evaluate(x, y, xt, yt, epochs=4, seed=1)
  _evaluate(x, y, xt, yt, epochs=4, seed=2, lr=0.02)   # new seed and lr: no retrace
  from dd_jax.evaluate import protocol
  from dd_jax import models
  model = models.from_config(SMALL, 10)
  _, _, run_chunk, accuracy = protocol._compiled(model, 0.9, 5e-4, 32, "none", 4)
  assert run_chunk._cache_size() == 1 and accuracy._cache_size() == 1


def test_idc_protocol_decays_the_lr_at_two_thirds_and_five_sixths_mtt_at_half():
  def lrs(recipe, epochs, offset=0):
    m = protocol.lr_milestones(recipe, epochs, offset)
    return [float(protocol.epoch_lr(1.0, offset + e, m, protocol.RECIPES[recipe].gamma))
            for e in range(epochs)]
  np.testing.assert_allclose(lrs("idc", 6), [1, 1, 1, 1, 0.2, 0.04], rtol=1e-6)
  np.testing.assert_allclose(lrs("mtt", 6), [1, 1, 1, 0.1, 0.1, 0.1], rtol=1e-6)
  np.testing.assert_allclose(lrs("idc", 6, offset=6), lrs("idc", 6), rtol=1e-6)   # a stage
  assert protocol.lr_milestones("idc", 1000).tolist() == [666, 833]   # torch's 2E//3, 5E//6


def test_idc_protocol_learns_is_seeded_and_trains_otherwise_than_mtt():
  # No crop: these classes differ by 2 rows, which crop's 4-pixel shifts erase.
  x, y, xt, yt = _data()
  idc = _evaluate(x, y, xt, yt, dsa_strategy="color_flip", protocol="idc")
  assert idc.mean >= 0.9, idc.summary()
  np.testing.assert_array_equal(
      idc.train_loss,
      _evaluate(x, y, xt, yt, dsa_strategy="color_flip", protocol="idc").train_loss)
  mtt = _evaluate(x, y, xt, yt, dsa_strategy="color_flip")
  assert not np.allclose(idc.train_loss, mtt.train_loss)
