"""dd_jax.losses: the matching loss, the unroll and its meta-gradient."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax import losses, models, training
from dd_jax.data import augment


def _quadratic(p, x, y):
  """Per-sample 0.5 |p - x|^2: SGD pulls p towards the batch mean of x."""
  del y
  return 0.5 * jnp.sum(jnp.square(p["w"][None] - x.reshape(x.shape[0], -1)), axis=-1)


def test_unroll_matches_the_closed_form_of_sgd_on_a_quadratic():
  # One sample c, N full-batch steps: p_N = c + (1 - lr)^N (p_0 - c).
  with jax.enable_x64(True):
    c = jnp.array([[1.0, -2.0, 0.5]])
    p0 = {"w": jnp.array([3.0, 1.0, -1.0])}
    n, lr = 7, 0.3
    idx = jnp.zeros((n, 1), jnp.int32)
    end, inner = losses.unroll(_quadratic, p0, lr, c, jnp.zeros(1), idx)
    want = c[0] + (1 - lr) ** n * (p0["w"] - c[0])
    np.testing.assert_allclose(end["w"], want, rtol=1e-12)
    assert inner.shape == (n,)
    # d p_N / d lr = -N (1 - lr)^(N-1) (p_0 - c), so the gradient of |p_N|^2 / 2 is:
    g = jax.grad(lambda r: 0.5 * jnp.sum(losses.unroll(_quadratic, p0, r, c,
                                                       jnp.zeros(1), idx)[0]["w"] ** 2))(lr)
    want_g = jnp.dot(want, -n * (1 - lr) ** (n - 1) * (p0["w"] - c[0]))
    np.testing.assert_allclose(g, want_g, rtol=1e-10)


def test_matching_loss_is_normalised_and_respects_the_mask():
  start = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2))}
  target = {"a": jnp.ones(3), "b": jnp.full((2, 2), 2.0)}
  assert float(losses.trajectory_matching_loss(start, target, start)) == 1.0
  assert float(losses.trajectory_matching_loss(target, target, start)) == 0.0
  end = {"a": jnp.ones(3), "b": jnp.zeros((2, 2))}   # a reached, b not at all
  np.testing.assert_allclose(losses.trajectory_matching_loss(end, target, start),
                             16.0 / 19.0, rtol=1e-6)
  only_a = {"a": True, "b": False}
  assert float(losses.trajectory_matching_loss(end, target, start, only_a)) == 0.0
  elementwise = {"a": jnp.array([True, False, False]), "b": jnp.ones((2, 2), bool)}
  np.testing.assert_allclose(
      losses.trajectory_matching_loss(end, target, start, elementwise), 16.0 / 17.0,
      rtol=1e-6)


def test_batch_schedule_follows_the_official_permutation_order():
  idx, mask = losses.batch_schedule(jax.random.PRNGKey(0), n=10, batch_size=4,
                                    num_steps=7)
  assert idx.shape == mask.shape == (7, 4)
  idx, mask = np.asarray(idx), np.asarray(mask)
  # 3 batches per pass (4 + 4 + 2 valid): each pass is a permutation of 0..9.
  for p in range(2):
    sl = slice(3 * p, 3 * p + 3)
    assert sorted(idx[sl][mask[sl]].tolist()) == list(range(10))
  assert mask.sum(axis=1).tolist() == [4, 4, 2, 4, 4, 2, 4]
  full, full_mask = losses.batch_schedule(jax.random.PRNGKey(0), 6, 100, 3)
  assert full.shape == (3, 6) and bool(np.all(full_mask))


def test_unroll_explains_bad_leading_dimensions():
  p = {"w": jnp.zeros(4)}
  x = jnp.zeros((5, 2, 2, 1))
  with pytest.raises(ValueError, match="share the leading"):
    losses.unroll(_quadratic, p, 0.1, x, jnp.zeros(4), jnp.zeros((3, 2), jnp.int32))
  with pytest.raises(ValueError, match=r"\[num_steps, batch_size\]"):
    losses.unroll(_quadratic, p, 0.1, x, jnp.zeros(5), jnp.zeros((3,), jnp.int32))
  with pytest.raises(ValueError, match="one PRNG key per step"):
    losses.unroll(_quadratic, p, 0.1, x, jnp.zeros(5), jnp.zeros((3, 2), jnp.int32),
                  keys=jax.random.split(jax.random.PRNGKey(0), 2))
  with pytest.raises(ValueError, match="lr must be a scalar"):
    losses.unroll(_quadratic, p, jnp.ones(2), x, jnp.zeros(5),
                  jnp.zeros((3, 2), jnp.int32))


def _convnet_problem(n_steps=4, batch=6, activation="relu"):
  """A tiny ConvNet student, a synthetic set, DSA, an expert target."""
  model = models.build("ConvNet", 3, width=4, depth=2, activation=activation)
  key = jax.random.PRNGKey(0)
  images = jax.random.normal(key, (9, 8, 8, 1))
  labels = jnp.arange(9) % 3
  start = model.init(jax.random.PRNGKey(1), images[:1], train=False)["params"]
  target = jax.tree.map(lambda p: p + 0.05 * jnp.sign(p), start)
  idx, mask = losses.batch_schedule(jax.random.PRNGKey(2), 9, batch, n_steps)
  keys = jax.random.split(jax.random.PRNGKey(3), n_steps)

  def per_sample(params, x, y):
    return training.cross_entropy(model.apply({"params": params}, x, train=True), y)

  aug = functools.partial(augment.dsa, strategy="crop_scale_flip")
  return dict(per_sample=per_sample, start=start, target=target, images=images,
              labels=labels, idx=idx, mask=mask, keys=keys, aug=aug)


def _meta_loss(prob, images, lr, remat=False, policy="nothing"):
  end, _ = losses.unroll(prob["per_sample"], prob["start"], lr, images, prob["labels"],
                         prob["idx"], prob["mask"], prob["keys"], augment=prob["aug"],
                         remat=remat, remat_policy=losses.remat_policy(policy))
  return losses.trajectory_matching_loss(end, prob["target"], prob["start"])


def test_scan_unroll_equals_a_python_loop():
  prob = _convnet_problem()
  end, inner = losses.unroll(prob["per_sample"], prob["start"], 0.05, prob["images"],
                             prob["labels"], prob["idx"], prob["mask"], prob["keys"],
                             augment=prob["aug"])
  params = prob["start"]
  for i in range(prob["idx"].shape[0]):
    x = prob["aug"](prob["keys"][i], prob["images"][prob["idx"][i]])
    params, _, value = losses.inner_step(prob["per_sample"], params, 0.05, x,
                                         prob["labels"][prob["idx"][i]],
                                         prob["mask"][i].astype(x.dtype))
    np.testing.assert_allclose(inner[i], value, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               end, params)


@pytest.mark.parametrize("policy", sorted(losses.REMAT_POLICIES))
def test_remat_changes_neither_loss_nor_meta_gradient(policy):
  prob = _convnet_problem()
  grad = jax.jit(jax.value_and_grad(functools.partial(_meta_loss, prob), argnums=(0, 1)),
                 static_argnames=("remat", "policy"))
  (v0, (gi0, gl0)) = grad(prob["images"], 0.05, remat=False)
  (v1, (gi1, gl1)) = grad(prob["images"], 0.05, remat=True, policy=policy)
  np.testing.assert_allclose(v1, v0, rtol=1e-5)
  np.testing.assert_allclose(gl1, gl0, rtol=1e-5)
  np.testing.assert_allclose(gi1, gi0, rtol=1e-5, atol=1e-5 * float(jnp.abs(gi0).max()))


def test_an_unknown_remat_policy_is_named():
  with pytest.raises(ValueError, match="dots_no_batch"):
    losses.remat_policy("everything")


def test_meta_gradient_matches_finite_differences():
  # float64 end to end: f32 second-order gradients differ from exact ones by ~1e-3.
  # Sigmoid, not ReLU: a ReLU student's gradient jumps where a pre-activation crosses 0,
  # so after two steps the unroll is only piecewise continuous in lr and the images and
  # finite differences across a jump are meaningless (seen here with DSA's scale op).
  with jax.enable_x64(True):
    prob = _convnet_problem(n_steps=3, activation="sigmoid")
    for name in ("start", "target", "images"):
      prob[name] = jax.tree.map(lambda a: a.astype(jnp.float64), prob[name])
    images, lr = prob["images"], jnp.float64(0.05)
    f = jax.jit(functools.partial(_meta_loss, prob))
    g_img, g_lr = jax.grad(f, argnums=(0, 1))(images, lr)
    eps = 1e-5
    fd_lr = (f(images, lr + eps) - f(images, lr - eps)) / (2 * eps)
    np.testing.assert_allclose(g_lr, fd_lr, rtol=1e-6)
    for seed in range(3):   # random directions in image space
      v = jax.random.normal(jax.random.PRNGKey(10 + seed), images.shape, jnp.float64)
      fd = (f(images + eps * v, lr) - f(images - eps * v, lr)) / (2 * eps)
      np.testing.assert_allclose(jnp.vdot(g_img, v), fd, rtol=1e-6)


def test_depth_mask_cuts_convnet3_at_the_official_position():
  from dd_jax.models.torch_layout import TorchLayout
  layout = TorchLayout.of(models.build("ConvNet", 10), (32, 32, 3))
  mask = losses.make_mask(layout.positions(), "depth", 0.5)
  flat = np.asarray(layout.flatten(mask))
  assert flat.dtype == bool and flat.sum() == 160_005
  assert not flat[:160_005].any() and flat[160_005:].all()    # the last 160,005 kept
  state = layout.state_dict(mask)                               # torch layout, per tensor
  conv2 = state["conv2.weight"].reshape(-1)                     # OIHW flattened
  assert not conv2[:8_325].any() and conv2[8_325:].all()
  assert not state["conv1.weight"].any() and state["fc.bias"].all()
  assert losses.make_mask(layout.positions(), "none", 0.0) is None
  everything = losses.make_mask(layout.positions(), "depth", 0.0)
  assert all(bool(np.all(m)) for m in jax.tree.leaves(everything))
  for bad in (1.0, -0.1):
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
      losses.make_mask(layout.positions(), "depth", bad)


def test_deep_mask_drops_the_deepest_share_of_the_same_order():
  from dd_jax.models.torch_layout import TorchLayout
  layout = TorchLayout.of(models.build("ConvNet", 10), (32, 32, 3))
  deep = np.asarray(layout.flatten(losses.make_mask(layout.positions(), "deep", 0.25)))
  cut = layout.num_params - int(0.25 * layout.num_params)
  assert deep[:cut].all() and not deep[cut:].any()          # fc and the last convs go
  assert not layout.state_dict(losses.make_mask(layout.positions(), "deep", 0.25))[
      "fc.weight"].any()
  assert layout.state_dict(losses.make_mask(layout.positions(), "deep", 0.25))[
      "conv0.weight"].all()                                      # the first conv stays


def test_leaf_positions_lay_any_pytree_end_to_end_in_leaf_order():
  params = {"Conv_0": {"bias": jnp.zeros(2), "kernel": jnp.zeros((3, 2))},
            "Dense_0": {"kernel": jnp.zeros((2, 1))}}
  pos = losses.leaf_positions(params)
  assert pos["Conv_0"]["bias"].tolist() == [0, 1]
  assert pos["Conv_0"]["kernel"].tolist() == [[2, 3], [4, 5], [6, 7]]
  assert pos["Dense_0"]["kernel"].tolist() == [[8], [9]]
  mask = losses.make_mask(pos, "depth", 0.5)    # the first 5 of 10 dropped
  assert mask["Conv_0"]["kernel"].tolist() == [[False, False], [False, True], [True, True]]
  assert mask["Dense_0"]["kernel"].all() and not mask["Conv_0"]["bias"].any()


def test_loss_ranked_mask_drops_the_best_matched_parameters_from_both_sums():
  start = {"a": jnp.zeros(4), "b": jnp.zeros((2, 2))}
  target = {"a": jnp.full(4, 2.0), "b": jnp.full((2, 2), 2.0)}
  # Per-element (end - target)^2: a -> 4, 0, 1, 9; b -> 0.25, 16, 2.25, 0
  end = {"a": jnp.array([0.0, 2.0, 1.0, 5.0]), "b": jnp.array([[1.5, 6.0], [0.5, 2.0]])}
  mask = losses.loss_ranked_mask(end, target, 0.5)      # drops the 4 lowest: 0, 0, .25, 1
  assert np.asarray(mask["a"]).tolist() == [True, False, False, True]
  assert np.asarray(mask["b"]).tolist() == [[False, True], [True, False]]
  loss = losses.trajectory_matching_loss(end, target, start, mask)
  np.testing.assert_allclose(loss, (4 + 9 + 16 + 2.25) / (4 * 4), rtol=1e-6)
  grads = jax.grad(lambda e: losses.trajectory_matching_loss(
      e, target, start, losses.loss_ranked_mask(e, target, 0.5)))(end)
  assert float(grads["a"][1]) == 0.0 and float(grads["b"][0, 0]) == 0.0
  assert float(grads["a"][3]) != 0.0


# --- AST: intermediate matching, momentum, balanced loss, weight perturbation ---------

def _softmax_regression(p, x, y):
  logits = x.reshape(x.shape[0], -1) @ p["w"] + p["b"]
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]


def _hand_unroll(w, b, xs, ys, batches, lr, momentum, at):
  """Softmax regression by hand (numpy): grad_W = x^T (softmax - onehot) / B."""
  vw, vb = np.zeros_like(w), np.zeros_like(b)
  kept = []
  for step, idx in enumerate(batches):
    x, y = xs[idx].reshape(len(idx), -1), ys[idx]
    z = x @ w + b
    prob = np.exp(z - z.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    prob[np.arange(len(idx)), y] -= 1.0
    gw, gb = x.T @ prob / len(idx), prob.mean(0)
    vw, vb = momentum * vw + gw, momentum * vb + gb
    w, b = w - lr * vw, b - lr * vb
    if step + 1 in at:
      kept.append((w.copy(), b.copy()))
  return (w, b), kept


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_intermediate_matching_equals_a_hand_computation(momentum):
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(6, 2, 2, 1)), rng.integers(0, 3, 6)
    w0, b0 = rng.normal(size=(4, 3)), rng.normal(size=3)
    n_steps, m, lr = 7, 3, 0.4
    batches = np.stack([rng.permutation(6)[:3] for _ in range(n_steps)])
    experts = [{"w": w0 + 0.3 * k * rng.normal(size=(4, 3)),
                "b": b0 + 0.3 * k * rng.normal(size=3)} for k in range(1, m + 1)]
    at = losses.intermediate_steps(n_steps, m)
    assert at == (2, 4)                        # floor(k * 7 / 3), k = 1, 2
    start = {"w": jnp.asarray(w0), "b": jnp.asarray(b0)}
    end, _, middles = losses.unroll_with_snapshots(
        _softmax_regression, start, lr, jnp.asarray(xs), jnp.asarray(ys),
        jnp.asarray(batches), at=at, momentum=momentum)
    (w_end, b_end), kept = _hand_unroll(w0, b0, xs, ys, batches, lr, momentum, at)
    np.testing.assert_allclose(end["w"], w_end, rtol=1e-10)
    for (w, b), got in zip(kept, middles):
      np.testing.assert_allclose(got["w"], w, rtol=1e-10)
      np.testing.assert_allclose(got["b"], b, rtol=1e-10)

    def dist(w, b, e):
      return np.sum((w - e["w"]) ** 2) + np.sum((b - e["b"]) ** 2)

    for rule, betas in (("equal", (1.0, 1.0)), ("proportional", (1 / 3, 2 / 3))):
      weights = losses.intermediate_weights(m, rule)
      np.testing.assert_allclose(weights, betas)
      got = losses.intermediate_matching_loss(middles, experts[:-1], start, weights)
      want = sum(beta * dist(w, b, e) / dist(w0, b0, e)
                 for beta, (w, b), e in zip(betas, kept, experts))
      np.testing.assert_allclose(got, want, rtol=1e-10)
    # The plain unroll is the same computation without the snapshots.
    plain, _ = losses.unroll(_softmax_regression, start, lr, jnp.asarray(xs),
                             jnp.asarray(ys), jnp.asarray(batches), momentum=momentum)
    np.testing.assert_allclose(plain["w"], end["w"], rtol=1e-12)


def test_intermediate_points_are_refused_when_they_do_not_fit():
  assert losses.intermediate_steps(4, 4) == (1, 2, 3)
  with pytest.raises(ValueError, match="at least one student step per expert epoch"):
    losses.intermediate_steps(3, 4)
  with pytest.raises(ValueError, match="strictly increasing"):
    losses.unroll_with_snapshots(_quadratic, {"w": jnp.zeros(3)}, 0.1, jnp.ones((1, 3)),
                                 jnp.zeros(1), jnp.zeros((3, 1), jnp.int32), at=(3,))


def test_balanced_loss_scale_follows_the_paper_and_the_code_base():
  import math
  # middle = 20 // 2 = 10; vartheta = 8.
  for t in (0, 4, 9, 10, 15, 19):
    want = (math.log(t - 10 + 8) if t >= 10 else 1 / math.log(10 - t + 8))
    np.testing.assert_allclose(losses.balanced_loss_scale(t, 20), want, rtol=1e-6)
    code = (math.log(t - 10 + 8, 5) if t >= 10 else 1 / math.log(10 - t + 8, 5))
    np.testing.assert_allclose(losses.balanced_loss_scale(t, 20, 8.0, 5.0), code, rtol=1e-6)
  # Early starts take smaller student steps than late ones.
  assert losses.balanced_loss_scale(0, 20) < 1 < losses.balanced_loss_scale(19, 20)


def test_filter_perturbation_keeps_each_filters_norm_ratio():
  key = jax.random.PRNGKey(3)
  params = {"conv": {"kernel": jax.random.normal(key, (3, 3, 4, 8)),
                     "bias": jnp.ones(8)},
            "norm": {"scale": jnp.ones(8)},
            "fc": {"kernel": jax.random.normal(jax.random.PRNGKey(1), (32, 10)) * 0.1,
                   "bias": jnp.zeros(10)}}
  rho = 0.1
  out = losses.perturb_weights(jax.random.PRNGKey(0), params, rho, "filter")
  for name in ("conv", "fc"):
    w, p = params[name]["kernel"], out[name]["kernel"]
    ratio = (jnp.linalg.norm((p - w).reshape(-1, w.shape[-1]), axis=0)
             / jnp.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0))
    np.testing.assert_allclose(ratio, rho, rtol=1e-5)
    assert not np.allclose(p, w)
  for leaf in (("conv", "bias"), ("norm", "scale"), ("fc", "bias")):
    np.testing.assert_array_equal(out[leaf[0]][leaf[1]], params[leaf[0]][leaf[1]])
  # Seeded: the same key gives the same perturbation, another key another.
  again = losses.perturb_weights(jax.random.PRNGKey(0), params, rho, "filter")
  np.testing.assert_array_equal(again["conv"]["kernel"], out["conv"]["kernel"])
  other = losses.perturb_weights(jax.random.PRNGKey(1), params, rho, "filter")
  assert not np.allclose(other["conv"]["kernel"], out["conv"]["kernel"])
  # The official code's variant: conv tensors only, theta + rho * theta * d / |d|.
  code = losses.perturb_weights(jax.random.PRNGKey(0), params, 1.0, "tensor")
  np.testing.assert_array_equal(code["fc"]["kernel"], params["fc"]["kernel"])
  rel = (code["conv"]["kernel"] - params["conv"]["kernel"]) / params["conv"]["kernel"]
  np.testing.assert_allclose(jnp.linalg.norm(rel.ravel()), 1.0, rtol=1e-5)
