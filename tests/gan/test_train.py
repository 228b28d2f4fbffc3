"""The small offline prior: trained as a conditional VAE decoder on the run's data,
loadable as a prior; random and converted priors; a class-count mismatch is refused."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax.data import pipeline
from dd_jax.errors import ConfigError
from dd_jax.gan import build, generator, train
from tests.conftest import tiny_idx_config, write_idx_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("prior")
  config = tiny_idx_config(write_idx_dataset(root / "idx"))
  with config.unlocked():
    g = config.gan
    g.resolution, g.num_layers, g.channel_base, g.channel_max = 16, 3, 64, 8
    g.w_dim, g.z_dim, g.encoder_width = 16, 8, 8
    g.train_steps, g.batch_size, g.log_every, g.lr = 30, 16, 10, 5e-3
  return config, pipeline.prepare(config.data), str(root / "work")


def test_the_prior_learns_and_is_written_whole(setup):
  config, prepared, work = setup
  folder = train.train_prior(config, work, prepared)
  assert sorted(os.listdir(folder)) == ["params.npz", "samples.png", "spec.json",
                                        "train.json"]
  with open(os.path.join(folder, "train.json")) as f:
    record = json.load(f)
  assert record["mse_after"] < 0.8 * record["mse_before"]   # reconstructions improve
  assert len(record["history"]) == 3
  gen, params = train.load_prior(config, work, prepared)
  assert gen.num_classes == 10 and gen.spec["img_resolution"] == 16
  ws = gen.mapping(params, jnp.zeros((2, 8)), jnp.array([0, 1]))
  pixels = gen.to_pixels(gen.from_f(params, ws, gen.to_f(params, ws, 0), 0), (28, 28), 1)
  assert pixels.shape == (2, 28, 28, 1)
  # w_avg holds each class's mean w, so truncation psi=0 renders the class average.
  # (w_avg averages 1000 draws: compared with 4000 others within 5 standard errors.)
  z = jax.random.normal(jax.random.PRNGKey(5), (4000, 8))
  spread = max(float(jnp.max(jnp.std(gen.mapping(params, z, jnp.full((4000,), c))[:, 0],
                                     axis=0))) for c in range(10))
  means = gen.class_mean_w(params, jax.random.PRNGKey(5), samples=4000)[:, 0]
  np.testing.assert_allclose(params["mapping"]["w_avg"], means, atol=5 * spread / 1000 ** 0.5)
  assert float(jnp.max(jnp.abs(means[0] - means[1]))) > 5 * spread / 1000 ** 0.5
  # Trained once: a second call reuses the folder.
  stamp = os.path.getmtime(os.path.join(folder, "params.npz"))
  train.train_prior(config, work, prepared)
  assert os.path.getmtime(os.path.join(folder, "params.npz")) == stamp


def test_training_is_seeded(setup, tmp_path):
  config, prepared, _ = setup
  with config.unlocked():
    config.gan.train_steps = 3
  a = generator.load(train.train_prior(config, str(tmp_path / "a"), prepared))[1]
  b = generator.load(train.train_prior(config, str(tmp_path / "b"), prepared))[1]
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_random_prior_and_a_prior_of_other_classes(setup, tmp_path):
  config, prepared, work = setup
  with config.unlocked():
    config.gan.prior = "random"
  gen, _ = train.load_prior(config, str(tmp_path), prepared)
  assert gen.num_classes == 10 and not os.path.exists(tmp_path / "prior")
  spec, params = build.random_generator(0, resolution=16, img_channels=1, c_dim=3,
                                        num_layers=3, channel_base=64, channel_max=8,
                                        w_dim=16, z_dim=8)
  generator.save(str(tmp_path / "three"), spec, params)
  with config.unlocked():
    config.gan.prior = str(tmp_path / "three")
  with pytest.raises(ConfigError) as err:
    train.load_prior(config, str(tmp_path), prepared)
  assert err.value.field == "gan.prior" and "3 classes, the data 10" in str(err.value)


def test_the_class_terms_train_the_head_on_real_images_and_the_generator_on_samples():
  import optax
  from dd_jax import models
  spec, gen_params = build.random_generator(0, resolution=8, img_channels=1, c_dim=3,
                                            num_layers=3, channel_base=32, channel_max=4,
                                            w_dim=8, z_dim=4)
  gen = generator.Generator(spec)
  encoder = models.build("ConvNet", 2 * 4 + 3, width=4, depth=2, norm="instancenorm")
  pixels = jax.random.uniform(jax.random.PRNGKey(1), (6, 8, 8, 1))
  labels = jnp.array([0, 1, 2, 0, 1, 2])
  params = {"generator": gen_params,
            "encoder": encoder.init(jax.random.PRNGKey(2), pixels, train=False)["params"]}
  key = jax.random.PRNGKey(3)
  loss = lambda w, p: train.make_loss(   # noqa: E731
      gen, encoder, (8, 8), 1, 0.25, w)(p, pixels, labels, key)[0]
  # The class terms' gradient: the loss with them minus the plain ELBO (one program).
  class_grad = jax.jit(jax.grad(lambda p: loss(2.0, p) - loss(0.0, p)))(params)
  ce_real = jax.jit(jax.grad(lambda e: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      train.encode(encoder, e, pixels, 4)[2], labels))))(params["encoder"])
  # The encoder sees the real images' cross-entropy only (the sample term is frozen for it).
  for a, c in zip(jax.tree.leaves(class_grad["encoder"]), jax.tree.leaves(ce_real)):
    np.testing.assert_allclose(a, 2.0 * c, rtol=1e-4, atol=1e-6)
  # The generator's gradient changes: the samples must look like their class.
  assert max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(class_grad["generator"])) > 1e-6
