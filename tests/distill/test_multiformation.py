"""IDC's multi-formation decode: shapes, tile order, torch's bilinear resize, gradients
that reach the stored images, and a factor that does not divide the image refused."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax.distill import multiformation
from dd_jax.errors import ConfigError


@pytest.mark.parametrize("shape, factor", [((3, 28, 28, 1), 2), ((2, 32, 32, 3), 2),
                                           ((2, 32, 32, 3), 4), ((1, 28, 28, 1), 7)])
def test_decode_makes_factor_squared_full_size_images_per_stored_one(shape, factor):
  images = jax.random.uniform(jax.random.PRNGKey(0), shape)
  decoded = multiformation.decode(images, factor)
  assert decoded.shape == (factor ** 2 * shape[0],) + shape[1:]
  labels = jnp.arange(shape[0])
  assert multiformation.decode_labels(labels, factor).tolist() == (
      list(range(shape[0])) * factor ** 2)


def test_tiles_come_out_row_major_each_tile_of_every_image_together():
  # Constant tiles: image k's tile (i, j) holds 100 k + 10 i + j; resizing keeps them.
  n, f, size = 2, 2, 8
  images = np.zeros((n, size, size, 1), np.float32)
  for k in range(n):
    for i in range(f):
      for j in range(f):
        images[k, i * 4:(i + 1) * 4, j * 4:(j + 1) * 4] = 100 * k + 10 * i + j
  decoded = np.asarray(multiformation.decode(jnp.asarray(images), f))
  expected = [100 * k + 10 * i + j for i in range(f) for j in range(f) for k in range(n)]
  np.testing.assert_allclose(decoded[:, 3, 5, 0], expected, rtol=1e-6)
  assert np.all(decoded == decoded[:, :1, :1])     # constant tiles stay constant


def test_decode_equals_torch_bilinear_upsampling_without_aligned_corners():
  torch = pytest.importorskip("torch")
  images = np.array(jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 3)))
  ours = np.asarray(multiformation.decode(jnp.asarray(images), 2))
  x = torch.from_numpy(images).permute(0, 3, 1, 2)
  tiles = [x[:, :, i * 16:(i + 1) * 16, j * 16:(j + 1) * 16] for i in range(2)
           for j in range(2)]
  up = torch.nn.functional.interpolate(torch.cat(tiles), size=(32, 32), mode="bilinear",
                                       align_corners=False)
  np.testing.assert_allclose(ours, up.permute(0, 2, 3, 1).numpy(), atol=1e-6)


def test_gradients_reach_every_stored_pixel():
  images = jax.random.uniform(jax.random.PRNGKey(2), (2, 28, 28, 1))
  weights = jax.random.normal(jax.random.PRNGKey(3), (8, 28, 28, 1))
  grad = jax.grad(lambda x: jnp.sum(multiformation.decode(x, 2) * weights))(images)
  assert grad.shape == images.shape and bool(jnp.all(grad != 0))


@pytest.mark.parametrize("factor, words", [(3, "3 does not divide the 28x28 images"),
                                           (0, "is 0")])
def test_a_factor_that_does_not_fit_is_refused(factor, words):
  with pytest.raises(ConfigError, match=rf"idc\.factor: {words}"):
    multiformation.check_factor(factor, (28, 28, 1))
