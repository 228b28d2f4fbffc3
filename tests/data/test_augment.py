"""DSA: each op's semantics, per-sample parameters, determinism, differentiability."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax.data import augment

X = jax.random.normal(jax.random.PRNGKey(0), (6, 12, 12, 3))


@pytest.mark.parametrize("name", sorted(augment.AUGMENTATIONS))
def test_each_op_keeps_shape_is_seeded_and_differentiable(name):
  op = jax.jit(augment.AUGMENTATIONS[name])
  key = jax.random.PRNGKey(1)
  y = op(key, X)
  assert y.shape == X.shape
  np.testing.assert_array_equal(y, op(key, X))
  g = jax.grad(lambda x: jnp.sum(op(key, x) ** 2))(X)
  assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0


def test_parameters_are_drawn_per_sample():
  same = jnp.broadcast_to(X[:1], X.shape)
  for name in ("color", "crop", "cutout", "scale", "rotate"):
    y = augment.AUGMENTATIONS[name](jax.random.PRNGKey(3), same)
    assert not np.allclose(y[0], y[1]), name


def test_flip_mirrors_columns_or_leaves_image():
  y = augment.flip(jax.random.PRNGKey(0), X, prob=1.0)
  np.testing.assert_array_equal(y, X[:, :, ::-1, :])
  np.testing.assert_array_equal(augment.flip(jax.random.PRNGKey(0), X, prob=0.0), X)


def test_crop_is_a_zero_filled_shift_of_at_most_one_eighth():
  x = jnp.arange(1, 1 + 16 * 16, dtype=jnp.float32).reshape(1, 16, 16, 1)
  x = jnp.tile(x, (20, 1, 1, 1))
  y = np.asarray(augment.crop(jax.random.PRNGKey(5), x))
  for img in y:
    nz = np.argwhere(img[..., 0] > 0)
    r0, c0 = nz.min(axis=0)
    r1, c1 = nz.max(axis=0)
    v = img[r0, c0, 0] - 1   # the source pixel that landed top-left
    dr, dc = int(v // 16) - r0, int(v % 16) - c0
    assert abs(dr) <= 2 and abs(dc) <= 2
    np.testing.assert_array_equal(img[r0:r1 + 1, c0:c1 + 1, 0],
                                  np.asarray(x[0, r0 + dr:r1 + 1 + dr, c0 + dc:c1 + 1 + dc, 0]))


def test_cutout_zeros_one_square_of_half_the_size_at_most():
  x = jnp.ones((50, 16, 16, 2))
  y = np.asarray(augment.cutout(jax.random.PRNGKey(2), x))
  zeros = (y[..., 0] == 0)
  assert (zeros == (y[..., 1] == 0)).all()          # same mask on every channel
  assert zeros.sum(axis=(1, 2)).max() == 64         # 8 x 8 when fully inside
  for z in zeros:
    rows, cols = np.flatnonzero(z.any(1)), np.flatnonzero(z.any(0))
    assert z[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()   # a rectangle


def test_identity_affine_is_exact_and_matches_torch_grid_sample():
  theta = jnp.tile(jnp.array([[[1.0, 0, 0], [0, 1.0, 0]]]), (X.shape[0], 1, 1))
  np.testing.assert_allclose(augment._affine_sample(X, theta), X, atol=1e-5)
  torch = pytest.importorskip("torch")
  F = torch.nn.functional
  rng = np.random.default_rng(0)
  t = rng.uniform(-0.3, 0.3, size=len(X))
  s = rng.uniform(0.8, 1.2, size=len(X))
  theta = np.stack([np.stack([s * np.cos(t), np.sin(t), 0 * t], -1),
                    np.stack([-np.sin(t), s * np.cos(t), 0 * t], -1)], 1).astype(np.float32)
  xt = torch.as_tensor(np.array(X).transpose(0, 3, 1, 2))
  grid = F.affine_grid(torch.as_tensor(theta), xt.shape, align_corners=True)
  ref = F.grid_sample(xt, grid, align_corners=True).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(augment._affine_sample(X, jnp.asarray(theta)), ref, atol=1e-5)


def test_rotation_stays_within_fifteen_degrees():
  # A single bright pixel off-centre moves along a circle by the drawn angle.
  x = jnp.zeros((200, 33, 33, 1)).at[:, 16, 28, 0].set(1.0)
  y = np.asarray(augment.rotate(jax.random.PRNGKey(0), x))
  angles = []
  for img in y[..., 0]:
    r, c = np.unravel_index(np.argmax(img), img.shape)
    angles.append(math.degrees(math.atan2(r - 16, c - 16)))
  assert max(abs(a) for a in angles) <= 15.5 and max(abs(a) for a in angles) > 10


def test_dsa_picks_one_op_per_call_and_none_is_identity():
  x = jnp.ones((4, 8, 8, 1))
  np.testing.assert_array_equal(augment.dsa(jax.random.PRNGKey(0), x, "none"), x)
  seen = set()
  for i in range(40):
    y = np.asarray(augment.dsa(jax.random.PRNGKey(i), X, "flip_cutout"))
    flipped = np.allclose(y, X[:, :, ::-1]) or np.allclose(y, X)
    seen.add("flip" if flipped else "cutout")
  assert seen == {"flip", "cutout"}
  with pytest.raises(ValueError, match="unknown DSA op"):
    augment.dsa(jax.random.PRNGKey(0), x, "color_blur")


def test_cutmix_pastes_one_box_from_the_permutation_and_weights_by_its_area():
  x = jnp.arange(4, dtype=jnp.float32)[:, None, None, None] * jnp.ones((4, 10, 10, 1))
  key = jax.random.PRNGKey(3)
  mixed, perm, kept = augment.cutmix(key, x, prob=1.0)
  changed = np.asarray(mixed != x)[..., 0]
  for n in range(4):   # inside the box the pixels are the partner's, outside unchanged
    if int(perm[n]) != n:
      assert changed[n].sum() == round((1 - float(kept)) * 100)
    np.testing.assert_array_equal(np.asarray(mixed[n])[changed[n]],
                                  np.asarray(x[int(perm[n])])[changed[n]])
  same, _, kept0 = augment.cutmix(key, x, prob=0.0)
  np.testing.assert_array_equal(same, x)
  assert float(kept0) == 1.0


def _marking_ops(monkeypatch):
  """Every op replaced by one that adds its own power of ten: the sum tells which ran."""
  marks = {"flip": 1.0, "color": 10.0, "crop": 100.0, "scale": 1e3, "rotate": 1e4,
           "cutout": 1e5}
  monkeypatch.setattr(augment, "AUGMENTATIONS",
                      {n: (lambda k, x, m=m: x + m) for n, m in marks.items()})
  return marks


def test_idc_dsa_applies_flip_color_and_cutout_always_and_one_other_op(monkeypatch):
  marks = _marking_ops(monkeypatch)
  x = jnp.zeros((2, 4, 4, 1))
  always = marks["flip"] + marks["color"] + marks["cutout"]
  drawn = set()
  for seed in range(12):
    added = float(augment.dsa_idc(jax.random.PRNGKey(seed), x, augment.DEFAULT_STRATEGY)[0, 0, 0, 0])
    rest = added - always
    assert rest in (marks["crop"], marks["scale"], marks["rotate"]), added
    drawn.add(rest)
  assert len(drawn) > 1   # the one op is drawn, not fixed
  # The MTT family's DSA applies exactly one op of the six.
  for seed in range(6):
    added = float(augment.augment_batch("one", jax.random.PRNGKey(seed), x,
                                        augment.DEFAULT_STRATEGY)[0, 0, 0, 0])
    assert added in marks.values(), added
  # Without geometric ops only the always-on ones run.
  only = augment.dsa_idc(jax.random.PRNGKey(0), x, "color_flip")
  np.testing.assert_allclose(only, x + marks["flip"] + marks["color"])
