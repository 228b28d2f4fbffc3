"""The shared training engine: GSAM's direction against a hand computation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax import training

C = {"a": np.array([1.0, 3.0]), "b": np.array([[0.5], [2.0]])}


def _loss(p):   # sum_i c_i w_i^2 + a0 * b1 (a cross term so the directions differ)
  return (jnp.sum(C["a"] * p["a"] ** 2) + jnp.sum(C["b"] * p["b"] ** 2)
          + p["a"][0] * p["b"][1, 0])


def _grad_np(a, b):
  ga = 2 * C["a"] * a + np.array([b[1, 0], 0.0])
  gb = 2 * C["b"] * b + np.array([[0.0], [a[0]]])
  return np.concatenate([ga, gb.ravel()])


@pytest.mark.parametrize("adaptive", [False, True])
def test_gsam_direction_matches_a_hand_computation(adaptive):
  jax.config.update("jax_enable_x64", True)
  try:
    params = {"a": jnp.array([0.7, -1.2]), "b": jnp.array([[0.4], [-0.3]])}
    sam = training.GSAM(rho=0.05, alpha=0.3, adaptive=adaptive)
    g = jax.grad(_loss)(params)
    got = sam.direction(jax.grad(_loss), params, g)
    w = np.concatenate([np.asarray(params["a"]), np.asarray(params["b"]).ravel()])
    g0 = _grad_np(np.asarray(params["a"]), np.asarray(params["b"]))
    if adaptive:
      e = 0.05 * w ** 2 * g0 / np.linalg.norm(np.abs(w) * g0)
    else:
      e = 0.05 * g0 / np.linalg.norm(g0)
    wp = w + e
    gp = _grad_np(wp[:2], wp[2:].reshape(2, 1))
    cos = g0 @ gp / (np.linalg.norm(g0) * np.linalg.norm(gp))
    want = gp - 0.3 * (g0 - cos * np.linalg.norm(g0) * gp / np.linalg.norm(gp))
    flat = np.concatenate([np.asarray(got["a"]), np.asarray(got["b"]).ravel()])
    np.testing.assert_allclose(flat, want, rtol=1e-10)
    assert not np.allclose(flat, g0) and not np.allclose(flat, gp)
  finally:
    jax.config.update("jax_enable_x64", False)
