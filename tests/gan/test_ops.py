"""Each generator op against an independent NumPy reference of the same math (loops over
samples and taps, the official reference path's order)."""
import numpy as np
import pytest

from dd_jax.gan import ops


def ref_upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
  """x NHWC float64: zero insertion, pad/crop, true 2-D convolution, subsample."""
  b, h, w, c = x.shape
  u = np.zeros((b, h * up, w * up, c))
  u[:, ::up, ::up] = x
  px0, px1, py0, py1 = padding
  u = np.pad(u, ((0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0)), (0, 0)))
  u = u[:, max(-py0, 0):u.shape[1] - max(-py1, 0), max(-px0, 0):u.shape[2] - max(-px1, 0)]
  if f is None:
    f2 = np.ones((1, 1))
  else:
    f = np.asarray(f, np.float64)
    f2 = np.outer(f, f) if f.ndim == 1 else f
  f2 = f2 * gain
  kh, kw = f2.shape
  out = np.zeros((b, u.shape[1] - kh + 1, u.shape[2] - kw + 1, c))
  for i in range(out.shape[1]):
    for j in range(out.shape[2]):
      for a in range(kh):
        for e in range(kw):
          out[:, i, j] += u[:, i + a, j + e] * f2[kh - 1 - a, kw - 1 - e]
  return out[:, ::down, ::down]


def ref_modulated_conv(x, weight, styles, demodulate, input_gain):
  """The official modulated_conv2d with per-sample weights and a grouped-conv loop."""
  o, i, k, _ = weight.shape
  w, s = weight.astype(np.float64), styles.astype(np.float64)
  if demodulate:
    w = w / np.sqrt(np.mean(w ** 2, axis=(1, 2, 3), keepdims=True))
    s = s / np.sqrt(np.mean(s ** 2))            # one mean over the batch, as the official
  wm = w[None] * s[:, None, :, None, None]       # [B, O, I, k, k]
  if demodulate:
    wm = wm / np.sqrt(np.sum(wm ** 2, axis=(2, 3, 4), keepdims=True) + 1e-8)
  wm = wm * input_gain
  xp = np.pad(x, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
  hh, ww = xp.shape[1] - k + 1, xp.shape[2] - k + 1
  out = np.zeros((x.shape[0], hh, ww, o))
  for bi in range(x.shape[0]):
    for a in range(k):
      for e in range(k):
        out[bi] += xp[bi, a:a + hh, e:e + ww, :] @ wm[bi, :, :, a, e].T
  return out


def _rng(seed=0):
  return np.random.default_rng(seed)


@pytest.mark.parametrize("up, down, padding, taps, ndim", [
    (1, 1, (0, 0, 0, 0), 1, 0),        # identity (no filter)
    (2, 1, (3, 2, 4, 1), 5, 1),        # upsample, separable asymmetric filter
    (1, 2, (1, 1, 1, 1), 4, 1),        # filter and subsample
    (2, 2, (-2, 3, 1, -1), 6, 1),      # negative padding crops
    (2, 2, (2, 2, 3, 2), 4, 2),        # 2-D (radial-like) filter
])
def test_upfirdn2d_matches_the_reference(up, down, padding, taps, ndim):
  rng = _rng(1)
  x = rng.normal(size=(2, 7, 6, 3))
  f = None if ndim == 0 else rng.normal(size=(taps,) * ndim)  # asymmetric: flip matters
  gain = float(up * up)
  got = np.asarray(ops.upfirdn2d(x.astype(np.float32), f, up, down, padding, gain))
  want = ref_upfirdn2d(x, f, up, down, padding, gain)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_filtered_lrelu_matches_the_reference_order():
  rng = _rng(2)
  x = rng.normal(size=(2, 8, 8, 4)) * 200   # large enough for the clamp to act
  bias = rng.normal(size=(4,))
  fu, fd = rng.normal(size=(8,)), rng.normal(size=(8,))
  padding = (5, 4, 5, 4)
  got = np.asarray(ops.filtered_lrelu(x.astype(np.float32), fu, fd, bias.astype(np.float32),
                                      up=2, down=2, padding=padding))
  y = ref_upfirdn2d(x + bias, fu, up=2, padding=padding, gain=4.0)
  y = np.where(y >= 0, y, 0.2 * y) * np.sqrt(2)
  assert (np.abs(y) > 256).mean() > 0.1     # the clamp acts on a good share of samples
  want = ref_upfirdn2d(np.clip(y, -256, 256), fd, down=2)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("demodulate, k", [(True, 3), (True, 1), (False, 1)])
def test_modulated_conv2d_matches_per_sample_weights(demodulate, k):
  rng = _rng(3)
  x = rng.normal(size=(3, 6, 5, 4))
  weight = rng.normal(size=(5, 4, k, k))
  styles = rng.normal(size=(3, 4)) + 1.0
  got = np.asarray(ops.modulated_conv2d(
      x.astype(np.float32), weight.astype(np.float32), styles.astype(np.float32),
      demodulate=demodulate, input_gain=0.7))
  want = ref_modulated_conv(x, weight, styles, demodulate, 0.7)
  assert got.shape == (3, 6 + k - 1, 5 + k - 1, 5)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_fully_connected_lrelu_and_second_moment_norm():
  rng = _rng(4)
  x, w, b = rng.normal(size=(3, 6)), rng.normal(size=(4, 6)), rng.normal(size=(4,))
  got = np.asarray(ops.fully_connected(x.astype(np.float32), w.astype(np.float32),
                                       b.astype(np.float32), 0.5, 0.1, "lrelu"))
  y = x @ (0.5 * w).T + 0.1 * b
  np.testing.assert_allclose(got, np.where(y >= 0, y, 0.2 * y) * np.sqrt(2), rtol=1e-5)
  n = np.asarray(ops.normalize_2nd_moment(x.astype(np.float32)))
  np.testing.assert_allclose(np.mean(n ** 2, axis=1), 1.0, rtol=1e-5)


def test_fourier_features_match_the_reference():
  rng = _rng(5)
  b, c, wdim, size, sr, bw = 2, 6, 8, (9, 7), 4.0, 1.5
  w = rng.normal(size=(b, wdim))
  aw, ab = rng.normal(size=(4, wdim)), np.array([1.0, 0.0, 0.0, 0.0])
  freqs = rng.normal(size=(c, 2))
  phases = rng.uniform(-0.5, 0.5, size=(c,))
  transform = np.eye(3) + 0.1 * rng.normal(size=(3, 3))
  transform[2] = [0, 0, 1]
  cw = rng.normal(size=(c, c))
  got = np.asarray(ops.fourier_features(
      *(np.float32(a) for a in (w, aw, ab)), 0.3, 1.0, *(np.float32(a) for a in
      (freqs, phases, transform, cw)), size=size, sampling_rate=sr, bandwidth=bw))
  want = np.zeros((b, size[1], size[0], c))
  for bi in range(b):
    t = (0.3 * aw) @ w[bi] + ab
    t = t / np.hypot(t[0], t[1])
    cs, sn, tx, ty = t
    m = (np.array([[cs, -sn, 0], [sn, cs, 0], [0, 0, 1]])
         @ np.array([[1, 0, -tx], [0, 1, -ty], [0, 0, 1]]) @ transform)
    ph = phases + freqs[:, 0] * m[0, 2] + freqs[:, 1] * m[1, 2]
    fr = freqs @ m[:2, :2]
    amp = np.clip(1 - (np.linalg.norm(fr, axis=1) - bw) / (sr / 2 - bw), 0, 1)
    for yy in range(size[1]):
      for xx in range(size[0]):
        gx, gy = (xx - (size[0] - 1) / 2) / sr, (yy - (size[1] - 1) / 2) / sr
        feat = np.sin(2 * np.pi * (gx * fr[:, 0] + gy * fr[:, 1] + ph)) * amp
        want[bi, yy, xx] = cw @ feat / np.sqrt(c)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
