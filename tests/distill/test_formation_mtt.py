"""IDC's multi-formation under MTT (distill.formation_factor): the step unrolls on the
decoded set, the run starts from IDC's mix and exports and evaluates the decoded set."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax.data import pipeline
from dd_jax.distill import idc, multiformation, run, workdir
from dd_jax.distill.state import lr_to_param
from dd_jax.distill.step import StepSettings, meta_loss, objective
from dd_jax.errors import ConfigError
from tests.distill.conftest import _config, _synset, expert_segment


def test_the_step_unrolls_on_the_decoded_set_and_every_tile_gets_a_gradient(shared):
  config = _config(*shared, syn_steps=2, batch_syn=0, dsa_strategy="none")
  model, prepared, start, target = expert_segment(config, shared[1])
  stored = jnp.asarray(prepared.x_train[:5])
  labels = jnp.arange(5, dtype=jnp.int32)
  key = jax.random.PRNGKey(3)
  plain = StepSettings.from_config(config.distill)
  formed = dataclasses.replace(plain, formation_factor=2)
  lr = jnp.float32(0.01)
  fn = objective(model, formed, (start, target, None, None, key), {}, None, None, None, None)
  loss, grad = jax.value_and_grad(lambda x: fn(x, lr_to_param(lr, "linear"), labels)[0])(
      stored)

  def by_hand(x):   # the unroll of the plain step on the decoded images and labels
    return meta_loss(model, plain, multiformation.decode(x, 2), lr,
                     multiformation.decode_labels(labels, 2), start, target, {}, key)[0]

  want_loss, want_grad = jax.value_and_grad(by_hand)(stored)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
  np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-9)
  # each of a stored image's 4 tiles (14x14) trains as an image of its own
  tiles = np.abs(np.asarray(grad)).reshape(5, 2, 14, 2, 14).sum(axis=(2, 4))
  assert (tiles > 0).all()
  plain_loss = meta_loss(model, plain, stored, lr, labels, start, target, {}, key)[0]
  assert not np.isclose(loss, plain_loss)   # not the stored images' unroll


def test_a_formation_run_starts_from_idcs_mix_and_exports_the_decoded_set(shared, tmp_path):
  outs = []
  for name in ("a", "b"):
    config = _config(*shared, formation_factor=2, iterations=2)
    run.distill(config, str(tmp_path / name))
    outs.append(_synset(str(tmp_path / name)))
  a, b = outs
  assert a["images"].shape[0] == 4 * 10 and a["labels"].tolist() == list(range(10)) * 4
  np.testing.assert_array_equal(a["images"], b["images"])   # seeded
  prepared = pipeline.prepare(config.data)
  mix, mix_labels = idc.mix_init(prepared.x_train, prepared.y_train, 10, 1, 2, config.seed)
  start, _ = multiformation.decode_set(mix, mix_labels, 2)
  moved = np.abs(a["images"] - start).reshape(40, -1).max(axis=1)
  assert (moved > 0).all() and np.median(moved) < 1.0   # from the mix, by small steps


def test_formation_factor_1_is_the_plain_runs_identity(shared):
  config = _config(*shared)
  identity = workdir.run_identity(config, pipeline.prepare(config.data))["config"]
  assert "formation_factor" not in identity["distill"]   # runs begun before it resume
  with config.unlocked():
    config.distill.formation_factor = 2
  identity = workdir.run_identity(config, pipeline.prepare(config.data))["config"]
  assert identity["distill"]["formation_factor"] == 2


@pytest.mark.parametrize("fields, words", [
    ({"formation_factor": 3}, "does not divide the 28x28 images"),
    ({"formation_factor": 0}, "is 0"),
    ({"formation_factor": 2, "pix_init": "noise"}, "pix_init='noise'"),
    ({"formation_factor": 2, "soft_labels": True}, "soft labels"),
])
def test_bad_formation_settings_are_one_line_errors_before_anything_is_written(
    shared, tmp_path, fields, words):
  config = _config(*shared, **fields)
  with pytest.raises(ConfigError) as e:
    run.distill(config, str(tmp_path / "run"))
  assert e.value.field == "distill.formation_factor" and words in str(e.value), str(e.value)
  assert not (tmp_path / "run" / "distill").exists()
