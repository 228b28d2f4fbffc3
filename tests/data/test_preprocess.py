"""Preprocessing: normalisation and ZCA, their inverse, and what metadata records."""
import numpy as np

from dd_jax.data import preprocess


def _images(n=400, size=6, channels=3, seed=0):
  rng = np.random.default_rng(seed)
  base = rng.integers(0, 256, size=(n, size, size, channels))
  smooth = (base + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=2)) // 3  # correlated
  return smooth.astype(np.uint8)


def test_normalisation_gives_zero_mean_unit_std_per_channel():
  x = _images()
  pre = preprocess.fit(x)
  y = pre.apply(x)
  np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1, atol=1e-4)
  np.testing.assert_allclose(pre.invert(y), x / 255.0, atol=1e-5)
  assert pre.describe()["zca"] is False


def test_zca_whitens_train_set_and_inverts():
  x = _images()
  pre = preprocess.fit(x, zca=True, zca_epsilon=1e-6)
  z = pre.apply(x).reshape(len(x), -1).astype(np.float64)
  cov = np.cov(z, rowvar=False)
  np.testing.assert_allclose(cov, np.eye(cov.shape[0]), atol=2e-3)
  # With the default epsilon the transform is a shrinkage, still exactly invertible.
  pre = preprocess.fit(x, zca=True)
  np.testing.assert_allclose(pre.invert(pre.apply(x)), x / 255.0, atol=1e-4)
  # The test split goes through the very same transform (fitted on train only).
  xt = _images(seed=1)[:10]
  manual = (((xt / 255.0 - pre.mean) / pre.std).reshape(10, -1) - pre.zca_mean) @ pre.zca
  np.testing.assert_allclose(pre.apply(xt).reshape(10, -1), manual, atol=1e-4)


def test_zca_fingerprint_tells_different_data_apart():
  a = preprocess.fit(_images(seed=0), zca=True).describe()
  b = preprocess.fit(_images(seed=0), zca=True).describe()
  c = preprocess.fit(_images(seed=2), zca=True).describe()
  assert a == b and a["zca_fingerprint"] != c["zca_fingerprint"]
