"""The small ViT: patches for 28 and 32 px, GLaD's sizes, dropout only when asked for,
and it learns through the evaluation protocol."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dd_jax import models, training
from dd_jax.data import preprocess
from dd_jax.errors import ConfigError
from dd_jax.evaluate import evaluate_synset
from tests.conftest import make_images


@pytest.mark.parametrize("shape, patches", [((28, 28, 1), 49), ((32, 32, 3), 64)])
def test_vit_takes_28_and_32_px_images_as_4px_patches(shape, patches):
  model = models.build("ViT", 10)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1,) + shape), train=False)["params"]
  assert params["pos_embedding"].shape == (1, patches + 1, 512)       # + the class token
  assert params["patch_embed"]["kernel"].shape == (16 * shape[2], 512)
  assert len([k for k in params if k.startswith("block")]) == 6        # GLaD's ViTCIFAR
  logits = model.apply({"params": params}, jnp.ones((2,) + shape), train=False)
  assert logits.shape == (2, 10) and bool(jnp.all(jnp.isfinite(logits)))


def test_dropout_acts_only_in_training_with_a_key():
  model = models.build("ViTTiny", 10)
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 28, 28, 1))
  params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
  plain, _ = training.apply(model, params, {}, x, train=True)
  same, _ = training.apply(model, params, {}, x, train=False, dropout_key=jax.random.PRNGKey(2))
  dropped, _ = training.apply(model, params, {}, x, train=True,
                              dropout_key=jax.random.PRNGKey(2))
  np.testing.assert_allclose(plain, same, rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(dropped - plain))) > 1e-3


def test_an_image_size_the_patch_does_not_divide_is_refused():
  model = models.build("ViTTiny", 10)
  with pytest.raises(ConfigError, match=r"model.arch: 30x30 images do not split into 4x4"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 30, 30, 1)), train=False)


def test_the_tiny_vit_learns_a_separable_problem_in_the_protocol():
  x, y = make_images(10, seed=0)
  xt, yt = make_images(5, seed=1)
  pre = preprocess.fit(x[..., None])
  config = ml_collections.ConfigDict({"arch": "ViTTiny", "conv_impl": "auto"})
  r = evaluate_synset(pre.apply(x[..., None]), y.astype(np.int32), pre.apply(xt[..., None]),
                      yt.astype(np.int32), num_classes=10, model_config=config, lr=0.01,
                      epochs=10, batch_size=50, dsa_strategy="none", num_nets=1, seed=0,
                      arch="ViTTiny")
  assert r.mean >= 0.4, r.summary()        # chance is 0.1; 54% after 10 epochs here
