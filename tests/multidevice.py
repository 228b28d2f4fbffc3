"""Measurements that need several devices, run by tests/test_sharding.py in a child
process started with XLA_FLAGS=--xla_force_host_platform_device_count=8 (the device
count is fixed when JAX starts, so the test process itself cannot switch).

python -m tests.multidevice steps|eval|run [args] prints one JSON object of figures;
the tests assert on them.
"""
import json
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs.common import base_config
from dd_jax import models, sharding
from dd_jax.data import augment
from dd_jax.distill import state as state_lib
from dd_jax.distill.step import Fixed, Segment, StepSettings, compiled_step


def _setup(experts_per_step: int, mesh_experts: int, mesh_data: int):
  """A width-8 depth-2 ConvNet on 8x8 images, 16 synthetic images in batches of 8,
  `experts_per_step` random (start, target) segments."""
  config = base_config()
  d = config.distill
  d.update(dict(syn_steps=4, batch_syn=8, ipc=4, pix_init="noise", lr_img=100.0,
                experts_per_step=experts_per_step))
  config.mesh.update(dict(experts=mesh_experts, data=mesh_data))
  model_config = ml_collections.ConfigDict(dict(config.model.to_dict(), width=8, depth=2))
  model = models.from_config(model_config, 4)
  rng = np.random.RandomState(0)
  x = rng.randn(16, 8, 8, 1).astype(np.float32)
  y = np.repeat(np.arange(4), 4).astype(np.int32)
  starts, targets = [], []
  for j in range(experts_per_step):
    p = model.init(jax.random.PRNGKey(j), x[:1], train=False)["params"]
    starts.append(p)
    targets.append(jax.tree.map(lambda a: a + 0.01 * jnp.sign(a), p))
  if experts_per_step == 1:
    start, target = starts[0], targets[0]
  else:
    start = jax.tree.map(lambda *a: np.stack(a), *starts)
    target = jax.tree.map(lambda *a: np.stack(a), *targets)
  return config, model, state_lib.create(d, x, y, 0), start, target


def _relative(a, b) -> float:
  """max |a - b| / max |a|, over pytrees."""
  num = max(float(jnp.max(jnp.abs(u - v))) for u, v in
            zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  den = max(float(jnp.max(jnp.abs(u))) for u in jax.tree.leaves(a))
  return num / den


def steps() -> dict:
  """Each strategy's sharded outer step (3 steps) against the same step on one device:
  the relative difference of the image updates and the lr, how many programs the
  sharded step compiled, and the scratch memory per device of both programs."""
  out = {"devices": len(jax.devices())}
  for name, (e, mesh_e, mesh_d) in {"data": (1, 1, 8), "experts": (4, 4, 2)}.items():
    config, model, state, start, target = _setup(e, mesh_e, mesh_d)
    settings = StepSettings.from_config(config.distill)
    single = compiled_step(model, settings)
    placement = sharding.Placement.from_config(config, 16)
    sharded = compiled_step(model, settings, placement=placement)
    where = placement.per_expert if e > 1 else placement.replicated
    a, b = state, placement.put(state, placement.replicated)
    losses = []
    args = (Segment(start, target), Fixed({}))
    placed = (Segment(placement.put(start, where), placement.put(target, where)), Fixed({}))
    for _ in range(3):
      a, ma = single(a, *args)
      b, mb = sharded(b, *placed)
      losses.append([float(ma["loss"]), float(mb["loss"])])
    out[name] = {
        "temp_single": single.lower(state, *args).compile().memory_analysis()
        .temp_size_in_bytes,   # per device
        "temp_sharded": sharded.lower(b, *placed).compile().memory_analysis()
        .temp_size_in_bytes,
        "mesh": dict(placement.mesh.shape),
        "images": _relative(a.images - state.images, b.images - state.images),
        "lr": abs(float(a.lr_param) - float(b.lr_param)) / abs(float(a.lr_param)),
        "losses": losses,
        "compiled": sharded._cache_size(),
        "state_sharding": str(b.images.sharding.spec),
        "state_devices": len(b.images.sharding.device_set)}
  return out


def evaluation() -> dict:
  """The evaluation protocol with its nets spread over the devices against one device."""
  from dd_jax.evaluate import protocol
  rng = np.random.RandomState(1)
  x = rng.randn(20, 8, 8, 1).astype(np.float32)
  y = np.repeat(np.arange(4), 5).astype(np.int32)
  xt = rng.randn(40, 8, 8, 1).astype(np.float32)
  yt = np.repeat(np.arange(4), 10).astype(np.int32)
  small = ml_collections.ConfigDict(dict(base_config().model.to_dict(), width=8, depth=2))
  kw = dict(num_classes=4, model_config=small, epochs=5, batch_size=8, num_nets=4,
            lr=0.01, chunk_epochs=2)
  spread = protocol.evaluate_synset(x, y, xt, yt, **kw)
  # The chunk length the protocol picks: a divisor of its epochs (7 under "mtt") up to 2.
  length = protocol._chunk_length(protocol.stage_epochs("mtt", kw["epochs"]),
                                  kw["chunk_epochs"])
  chunk = protocol._compiled(models.from_config(small, 4), 0.9, 5e-4, 8,
                             augment.DEFAULT_STRATEGY, length, sharding.nets_sharding(4))[2]
  compiled = chunk._cache_size()
  real = sharding.nets_sharding
  sharding.nets_sharding = lambda n, devices=None: None
  try:
    one = protocol.evaluate_synset(x, y, xt, yt, **kw)
  finally:
    sharding.nets_sharding = real
  return {"spread": spread.accuracies.tolist(), "one": one.accuracies.tolist(),
          "loss_spread": spread.train_loss.tolist(), "loss_one": one.train_loss.tolist(),
          "nets_devices": len(real(4).device_set), "five_nets_devices":
          len(real(5).device_set), "compiled_chunks": compiled}


if __name__ == "__main__":
  print(json.dumps({"steps": steps, "eval": evaluation}[sys.argv[1]]()))
