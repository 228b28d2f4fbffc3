"""The generator assembled from a spec: the split at any layer, one-layer advance, the
mapping, and a save/load round trip."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax.errors import ConfigError
from dd_jax.gan import build, generator


@pytest.fixture(scope="module")
def small():
  spec, params = build.random_generator(0, resolution=16, img_channels=1, c_dim=3,
                                        num_layers=4, channel_base=256, channel_max=8,
                                        w_dim=16, z_dim=8)
  gen = generator.Generator(spec)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, spec["z_dim"]))
  return gen, params, gen.mapping(params, z, jnp.array([0, 2]))


def test_the_split_at_every_layer_renders_the_same_image(small):
  gen, params, ws = small
  full = gen.from_f(params, ws, gen.to_f(params, ws, 0), 0)
  assert full.shape == (2, 16, 16, 1) and float(jnp.std(full)) > 0
  for k in range(gen.num_layers + 1):
    f = gen.to_f(params, ws, k)
    assert f.shape[1:] == gen.f_shape(k)
    np.testing.assert_allclose(gen.from_f(params, ws, f, k), full, atol=1e-5)
    if k < gen.num_layers:   # advance = one more layer
      np.testing.assert_allclose(gen.advance(params, ws, f, k), gen.to_f(params, ws, k + 1),
                                 atol=1e-5)
  # Layer i reads ws[:, i + 1]: changing the last latent moves only the image.
  ws2 = ws.at[:, -1].add(1.0)
  np.testing.assert_array_equal(gen.to_f(params, ws2, gen.num_layers - 1),
                                gen.to_f(params, ws, gen.num_layers - 1))
  assert not np.allclose(gen.from_f(params, ws2, gen.to_f(params, ws2, 0), 0), full)


def test_mapping_is_conditional_and_truncates_to_the_class_average(small):
  gen, params, ws = small
  assert ws.shape == (2, gen.num_ws, gen.spec["w_dim"])
  z = jnp.ones((1, gen.spec["z_dim"]))
  a, b = gen.mapping(params, z, jnp.array([0])), gen.mapping(params, z, jnp.array([1]))
  assert not np.allclose(a, b)
  avg = params["mapping"]["w_avg"].at[1].set(3.0)
  p = {**params, "mapping": {**params["mapping"], "w_avg": avg}}
  np.testing.assert_allclose(gen.mapping(p, z, jnp.array([1]), psi=0.0), 3.0)


def test_a_layer_outside_the_generator_is_a_clear_error(small):
  gen, params, ws = small
  with pytest.raises(ConfigError) as err:
    gen.to_f(params, ws, gen.num_layers + 1)
  assert err.value.field == "gan.layer" and f"[0, {gen.num_layers}]" in str(err.value)


def test_save_and_load_round_trip(small, tmp_path):
  gen, params, ws = small
  generator.save(str(tmp_path / "g"), gen.spec, params)
  spec, loaded = generator.load(str(tmp_path / "g"))
  assert spec == gen.spec
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  again = generator.Generator(spec)
  np.testing.assert_array_equal(again.from_f(loaded, ws, again.to_f(loaded, ws, 0), 0),
                                gen.from_f(params, ws, gen.to_f(params, ws, 0), 0))


@pytest.mark.parametrize("margin", [0, 2])
def test_the_margin_sets_the_inner_feature_maps(margin):
  spec, params = build.random_generator(1, resolution=16, img_channels=1, c_dim=2,
                                        num_layers=3, channel_base=64, channel_max=8,
                                        w_dim=16, z_dim=8, margin=margin)
  sizes = [spec["input"]["size"][0]] + [s["out_size"][0] for s in spec["layers"]]
  # StyleGAN3's schedule for 16 px, 3 layers: every sampling rate 16; the last two
  # layers (the critically sampled one and ToRGB) are the image, the rest have margins.
  assert sizes == [16 + 2 * margin] * 3 + [16, 16]
  gen = generator.Generator(spec)
  images = gen.synthesize(params, gen.mapping(params, jnp.ones((2, 8)), jnp.array([0, 1])))
  assert images.shape == (2, 16, 16, 1) and bool(jnp.all(jnp.isfinite(images)))
