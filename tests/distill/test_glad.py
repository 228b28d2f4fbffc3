"""GLaD in the MTT step: latents rendered through a frozen generator, gradients pulled
back with jax.vjp; only ws after layer k and f move; the export is the rendering."""
import os

import numpy as np
import pytest

from dd_jax.distill import run
from dd_jax.errors import ConfigError
from tests.distill.conftest import _config, _synset


def _glad(shared, **glad):
  config = _config(*shared, ipc=1, parameterization="glad", iterations=3)
  with config.unlocked():
    g = config.gan
    g.prior, g.resolution, g.num_layers, g.channel_base = "random", 16, 3, 64
    g.channel_max, g.w_dim, g.z_dim = 8, 16, 8
    config.glad.layer, config.glad.chunk = 2, 4
    config.glad.update(glad)
  return config


@pytest.mark.parametrize("method", ["mtt", "dc"])   # DC's path includes DM's
def test_glad_moves_only_the_latents_after_layer_k_and_exports_their_rendering(
    shared, tmp_path, method):
  config = _glad(shared)
  with config.unlocked():
    config.distill.method = method
    config.distill.batch_real, config.distill.dc_outer_loop = 16, 2
    config.distill.dc_inner_loop = 1
  work = str(tmp_path / "glad")
  distiller = run.Distiller(config, work)
  start = distiller.initial_state()
  distiller.run()
  with np.load(os.path.join(work, "latents.npz")) as f:
    ws, feat = f["ws"], f["f"]
  k = config.glad.layer
  w0, f0 = np.asarray(start.images["ws"]), np.asarray(start.images["f"])
  np.testing.assert_array_equal(ws[:, :k + 1], w0[:, :k + 1])   # no gradient reaches them
  assert not np.allclose(ws[:, k + 1:], w0[:, k + 1:]) and not np.allclose(feat, f0)
  rendered = distiller.param.render({"ws": ws, "f": feat})
  got = _synset(work)
  assert got["images"].shape == (10, 28, 28, 1)
  np.testing.assert_allclose(got["images"], np.asarray(rendered), atol=1e-5)


def test_a_layer_outside_the_prior_is_one_clear_error(shared, tmp_path):
  with pytest.raises(ConfigError) as err:
    run.Distiller(_glad(shared, layer=9), str(tmp_path / "bad"))
  assert err.value.field == "glad.layer" and "[0, 4]" in str(err.value)
