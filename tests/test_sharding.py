"""Sharding: the mesh from config, several experts per step, and (in a child process
with 8 CPU devices) every strategy's sharded step against one device."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dd_jax import sharding
from dd_jax.distill import segments
from dd_jax.distill.step import Fixed, Segment, make_step, meta_loss, StepSettings
from dd_jax.errors import ConfigError
from tests import multidevice
from tests.conftest import ROOT


def _mesh_config(experts=1, data=-1, experts_per_step=1, batch_syn=0):
  return ml_collections.ConfigDict(dict(
      mesh=dict(experts=experts, data=data),
      distill=dict(experts_per_step=experts_per_step, batch_syn=batch_syn)))


def test_auto_data_axis_takes_the_largest_even_split_of_the_batch():
  assert sharding.resolve_axes(_mesh_config().mesh, 8, 1, 256) == (1, 8)
  assert sharding.resolve_axes(_mesh_config().mesh, 8, 1, 100) == (1, 4)
  assert sharding.resolve_axes(_mesh_config().mesh, 8, 1, 7) == (1, 1)
  assert sharding.resolve_axes(_mesh_config(experts=2).mesh, 8, 4, 12) == (2, 4)
  assert sharding.resolve_axes(_mesh_config().mesh, 1, 1, 10) == (1, 1)
  assert sharding.resolve_axes(_mesh_config(data=3).mesh, 8, 1, 12) == (1, 3)  # 3 used


@pytest.mark.parametrize("kw, devices, batch, field, words", [
    (dict(experts=3, experts_per_step=4), 8, 8, "mesh.experts", "divisor of distill"),
    (dict(experts=3, experts_per_step=3), 8, 8, "mesh.experts", "does not divide the 8"),
    (dict(data=4), 8, 10, "mesh.data", "batch_syn"),
    (dict(data=16), 8, 16, "mesh.data", "this run has 8"),
])
def test_a_mesh_that_does_not_fit_is_refused_naming_the_field(kw, devices, batch, field,
                                                              words):
  config = _mesh_config(**kw)
  with pytest.raises(ConfigError) as e:
    sharding.resolve_axes(config.mesh, devices, config.distill.experts_per_step, batch)
  assert e.value.field == field and words in str(e.value)


def test_one_device_places_everything_on_a_one_by_one_mesh():
  placement = sharding.Placement.from_config(_mesh_config(), 10)
  assert dict(placement.mesh.shape) == {"experts": 1, "data": 1}
  x = placement.put(np.arange(6.0), placement.replicated)
  assert x.sharding == placement.replicated and placement.batch(x) is x
  assert sharding.nets_sharding(5) is None


def test_the_first_of_several_segments_is_the_single_segment_draw():
  window = segments.StartWindow(max_start=20)
  for step in range(5):
    segs = segments.sample_segments(3, step, [0, 1, 2, 3], window, 4)
    assert segs[0] == segments.sample_segment(3, step, [0, 1, 2, 3], window)
    assert len(set(segs)) > 1    # independent draws, not one segment repeated


def test_several_experts_per_step_average_their_losses_and_gradients():
  config, model, state, start, target = multidevice._setup(3, 1, 1)
  config.distill.dsa_strategy = "none"   # not what is checked here; 2/3 of the compile
  settings = StepSettings.from_config(config.distill)
  new, metrics = jax.jit(make_step(model, settings))(state, Segment(start, target),
                                                      Fixed({}))
  key = jax.random.split(state.rng)[0]
  keys = jax.random.split(key, 3)

  def mean_loss(images):
    parts = [meta_loss(model, settings, images, jnp.float32(config.distill.lr_teacher),
                       state.labels, jax.tree.map(lambda a: a[j], start),
                       jax.tree.map(lambda a: a[j], target), {}, keys[j])[0]
             for j in range(3)]
    return jnp.mean(jnp.stack(parts)), parts

  (loss, parts), grad = jax.jit(jax.value_and_grad(mean_loss, has_aux=True))(state.images)
  assert float(metrics["loss"]) == pytest.approx(float(loss), rel=1e-5)
  assert len({round(float(p), 6) for p in parts}) == 3   # three different segments
  # First step, momentum buffers empty: the update is -lr_img * the mean gradient.
  np.testing.assert_allclose(np.asarray(new.images - state.images),
                             -config.distill.lr_img * np.asarray(grad), rtol=1e-4,
                             atol=1e-6 * config.distill.lr_img)


def _eight_devices(what: str) -> dict:
  flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8"
  env = dict(os.environ, XLA_FLAGS=flags.strip(),
             PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, "-m", "tests.multidevice", what], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def steps():
  return _eight_devices("steps")


@pytest.mark.parametrize("strategy, mesh", [("data", {"experts": 1, "data": 8}),
                                            ("experts", {"experts": 4, "data": 2})])
def test_a_sharded_step_equals_the_one_device_step(steps, strategy, mesh):
  got = steps[strategy]
  assert steps["devices"] == 8 and got["mesh"] == mesh
  assert got["images"] < 1e-5 and got["lr"] < 1e-5      # three steps, relative
  for single, sharded in got["losses"]:
    assert sharded == pytest.approx(single, rel=1e-5)
  assert got["compiled"] == 1                            # no recompiles across steps
  assert got["state_sharding"] == "P()" and got["state_devices"] == 8   # replicated
  # Each device holds a part: an eighth of the batch (data); one of the four segments,
  # half its batch, where one device runs the four one after another (experts).
  share = {"data": 0.5, "experts": 0.75}[strategy]
  assert got["temp_sharded"] < share * got["temp_single"]


def test_evaluation_spreads_its_nets_over_devices_with_the_same_result():
  got = _eight_devices("eval")
  assert got["nets_devices"] == 4 and got["five_nets_devices"] == 5
  assert got["spread"] == got["one"]
  np.testing.assert_allclose(got["loss_spread"], got["loss_one"], rtol=1e-5)
  assert got["compiled_chunks"] == 1
