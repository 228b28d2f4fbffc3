"""IDC as a method: multi-formation storage, per-class gradient matching on the decoded
images, the matching net trained on real data between matches (the math and the
compiled step: distill/idc.py). SeqMatch-IDC's earlier subsets enter the matches
class-grouped; its warm start gives the matching nets' starts (`idc.NetInit`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dd_jax import faults
from dd_jax.distill import idc, multiformation
from dd_jax.distill.methods import backbones, base
from dd_jax.errors import require


class IDC(base.Method):
  name = "idc"
  description = "gradient matching with multi-formation (IDC)"
  seqmatch = True
  sections = ("idc",)

  def __init__(self, ctx: base.RunContext, param: base.Parameterization):
    super().__init__(ctx, param)
    config, p = ctx.config, ctx.prepared
    self.factor = config.idc.factor
    device = jax.devices()[0]
    grouped = None   # SeqMatch's earlier subsets, class grouped
    frozen = ctx.frozen
    if frozen is not None:
      order = np.argsort(np.asarray(frozen[1]), kind="stable")
      grouped = jnp.asarray(np.asarray(frozen[0], np.float32)[order])
    self.data = jax.device_put(idc.RealData(jnp.asarray(p.x_train),
                                            jnp.asarray(p.y_train, jnp.int32), grouped),
                               device)
    earlier = 0 if grouped is None else len(grouped) // p.num_classes
    self.settings = idc.IDCSettings.from_config(config, p.num_classes, p.pre, earlier)
    self.real = idc.RealIndices(p.y_train, p.num_classes, self.settings, config.seed)
    self.step_fn = idc.compiled_step(ctx.model, self.settings)
    warm = ctx.warm_start
    self.net_init = (idc.NetInit(ctx.model, self.data.x_train[:1], config.idc.fix_iter,
                                 config.seed, ctx.stage.step_offset, warm)
                     if idc.NetInit.needed(config.idc.fix_iter, warm) else None)

  @staticmethod
  def validate(config) -> None:
    backbones.validate_matching(config)
    require(config.distill.param_mask == "none", "distill.param_mask",
            "IDC matches every conv kernel's gradient; no parameter mask applies",
            "use distill.param_mask='none'")

  @staticmethod
  def validate_against_data(config, image_shape) -> None:
    idc.validate(config, image_shape)

  @classmethod
  def images_per_stored(cls, config) -> int:
    return config.idc.factor ** 2

  def initial_set(self, d):
    """IDC's "mix": ipc x factor^2 real images shrunk into tiles."""
    p = self.ctx.prepared
    return idc.mix_init(p.x_train, p.y_train, p.num_classes, d.ipc, self.factor,
                        self.ctx.config.seed)

  def step(self, state, step: int):
    real_idx, net_idx = self.real.indices(step)
    init = self.net_init(step) if self.net_init else None
    draw = idc.Draw(jnp.asarray(real_idx), jnp.asarray(net_idx), init)
    state, metrics = self.step_fn(state, draw, self.data)
    faults.point("distill.step")
    return state, jax.device_get(metrics), f"{self.name} step {step}"

  @classmethod
  def decode(cls, config, images, labels):
    return multiformation.decode_set(images, labels, config.idc.factor)
