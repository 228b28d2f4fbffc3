"""The shared training engine: GSAM's direction, AST's gradient penalty and clipped CE
against hand computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax import models, training

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


@pytest.mark.parametrize("norm", ["sample", "channel"])
def test_gradient_penalty_matches_a_hand_computation(norm):
  # logits = flatten(x^2) @ W: grad_x sum(logits) = 2 x * (W 1), different per sample.
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 2, 2, 3))
  w = rng.normal(size=(12, 4))
  weights = np.array([1.0, 1.0, 0.0])        # the last row is padding
  penalty = training.GradientPenalty(weight=2.0, target=1.0, norm=norm)
  with jax.enable_x64(True):
    got = penalty(lambda v: (v * v).reshape(v.shape[0], -1) @ jnp.asarray(w),
                  jnp.asarray(x), jnp.asarray(weights))
  g = 2 * x * w.sum(1).reshape(2, 2, 3)
  if norm == "sample":
    per = (np.sqrt((g ** 2).sum((1, 2, 3))) - 1.0) ** 2
  else:   # the official code: norm over channels per pixel, squared gap averaged
    per = ((np.sqrt((g ** 2).sum(-1)) - 1.0) ** 2).mean((1, 2))
  np.testing.assert_allclose(got, 2.0 * (per * weights).sum() / weights.sum(), rtol=1e-10)


def test_clipped_ce_scale_ramps_as_paper_and_code():
  code = [training.clipped_ce_scale(e, 10) for e in range(1, 13)]
  np.testing.assert_allclose(code, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95,
                                    1.0, 1.0])
  paper = [training.clipped_ce_scale(e, 5) for e in range(1, 8)]
  np.testing.assert_allclose(paper, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0])
  assert training.clipped_ce_scale(1, 0) == 1.0


def test_loss_scale_of_an_epoch_scales_the_plain_sgd_step():
  # Plain SGD is linear in the loss: one full-batch step on CE x 0.5 at lr 0.1 is the
  # step on CE at lr 0.05.
  model = models.build("MLP", 3, hidden=(8,))
  x = jnp.asarray(np.random.default_rng(1).normal(size=(16, 2, 2, 1)), jnp.float32)
  y = jnp.asarray(np.arange(16) % 3, jnp.int32)
  tx = training.direction("sgd")
  state = training.init_state(model, jax.random.PRNGKey(0), x[:1], tx)
  epoch = jax.jit(training.make_train_epoch(model, tx, 16, "none"))
  key = jax.random.PRNGKey(2)
  scaled, loss_scaled, _ = epoch(state, jnp.float32(0.1), x, y, key, jnp.float32(0.5))
  slower, loss, _ = epoch(state, jnp.float32(0.05), x, y, key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), scaled.params,
               slower.params)
  np.testing.assert_allclose(loss_scaled, 0.5 * loss, rtol=1e-6)
