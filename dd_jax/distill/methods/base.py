"""The interfaces of a distillation method and of a parameterisation, and what both are
built from.

A method (`distill.method`: mtt, dc, dm, idc) owns its config checks, what it needs
before the first step (experts, real batches, compiled step), the outer step, how its
stored set becomes the images a net trains on, and what the memory plan and the disk
check must count. A parameterisation (`distill.parameterization`: pixels, glad, hpd)
owns what the state's `images` are (pixels, or a generator's latents), their first
values and how they render. The loop (distill/loop.py) drives both and names neither;
distill/methods/__init__.py maps the config's names to them. docs/architecture.md walks
through a minimal method.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from dd_jax.data import pipeline
from dd_jax.distill import state as state_lib

Params = Any
Mask = Any


@dataclasses.dataclass
class RunContext:
  """What every method and parameterisation of one run is built from."""
  config: ml_collections.ConfigDict
  workdir: str
  prepared: pipeline.Prepared
  model: nn.Module
  abstract: Params               # the net's parameter shapes (ShapeDtypeStruct tree)
  batch_stats: Params            # {} for nets without batch norm
  mask: Mask | None              # PAD's parameter mask (None: all, or built per step)
  stage: Any                     # distill/stage.py's Stage of this run
  plan_only: bool = False        # shapes and the compiled step only (dd_jax.plan)

  @property
  def set_size(self) -> int:
    """The images optimised in this run (state.images' first axis): classes x ipc."""
    return self.prepared.num_classes * self.config.distill.ipc

  @property
  def pool_size(self) -> int:
    """The images an inner batch draws from: the optimised set and SeqMatch's frozen
    earlier subsets."""
    frozen = self.frozen
    return self.set_size + (0 if frozen is None else len(frozen[0]))

  @property
  def frozen(self) -> tuple[np.ndarray, np.ndarray] | None:
    """SeqMatch's earlier subsets (images, labels), or None."""
    return self.stage.frozen()

  @property
  def warm_start(self):
    """SeqMatch's warm start of later subsets' experts / matching nets, or None."""
    return self.stage.warm_start


class Parameterization:
  """Pixels: the state's images are the images. Subclasses: distill/methods/latents.py."""
  name: ClassVar[str] = "pixels"
  description: ClassVar[str] = "pixels"   # in words, for the run report
  latent: ClassVar[bool] = False         # the images are a generator's latents
  progressive: ClassVar[bool] = False    # run space by space (distill/hpd.py)
  sections: ClassVar[tuple[str, ...]] = ()   # config sections only it reads

  space = prior = latent_tx = None        # the compiled steps' latent arguments

  def __init__(self, ctx: RunContext):
    self.ctx = ctx

  @staticmethod
  def validate(config: ml_collections.ConfigDict) -> None:
    del config

  def initial(self, method: "Method") -> tuple[Any, np.ndarray]:
    """The first images and labels: the method's initial set."""
    return method.initial_set(self.ctx.config.distill)

  def images_like(self, n: int, image_shape: tuple[int, ...]) -> Any:
    """Zeros of the state's `images` for n images (a checkpoint's restore target)."""
    return np.zeros((n,) + tuple(image_shape), np.float32)

  def render(self, images) -> np.ndarray:
    """The network-input images of the state's `images`."""
    return np.asarray(images)

  def export_extra(self, workdir: str, images) -> None:
    """Files written beside the exported set (GLaD: the latents)."""


class Method:
  """The defaults of a method; see distill/methods/mtt.py for the full interface."""
  name: ClassVar[str]
  description: ClassVar[str] = ""         # in words, for the run report
  uses_experts: ClassVar[bool] = False    # trajectories: experts trained before the run
  seqmatch: ClassVar[bool] = False        # SeqMatch may split it into subsets
  multiprocess: ClassVar[bool] = False    # runs over several processes
  sections: ClassVar[tuple[str, ...]] = ()   # config sections only it reads

  def __init__(self, ctx: RunContext, param: Parameterization):
    self.ctx, self.param = ctx, param
    self.state_sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])

  @staticmethod
  def validate(config: ml_collections.ConfigDict) -> None:
    """The method's own config fields (after the common ones, distill/validation.py)."""
    del config

  @staticmethod
  def validate_against_data(config: ml_collections.ConfigDict, image_shape) -> None:
    """What needs the data's shapes, before anything is written."""
    del config, image_shape

  def put(self, state: state_lib.DistillState) -> state_lib.DistillState:
    """The state where the step wants it (committed like the step's outputs)."""
    return jax.device_put(state, self.state_sharding)

  def initial_set(self, d: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels before step 0 for the `distill` section `d` (SeqMatch asks for
    the whole IPC once and slices it into subsets)."""
    p = self.ctx.prepared
    return state_lib.initial_images(p.x_train, p.y_train, p.num_classes, d.ipc,
                                    d.pix_init, self.ctx.config.seed)

  def step(self, state, step: int) -> tuple[Any, dict, str]:
    """One outer step: (state, metrics on the host, where it matched)."""
    raise NotImplementedError

  @classmethod
  def decode(cls, config: ml_collections.ConfigDict, images, labels
             ) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels a net trains on, of the stored ones."""
    del config
    return np.asarray(images), np.asarray(labels)

  @classmethod
  def disk_needs(cls, ctx: RunContext) -> dict[str, int]:
    """Bytes the method writes besides checkpoints and exports (MTT: its experts),
    told before anything is built."""
    del ctx
    return {}

  @classmethod
  def images_per_stored(cls, config: ml_collections.ConfigDict) -> int:
    """Images a net trains on per stored image (IDC's multi-formation: factor^2)."""
    del config
    return 1

  def memory_plan(self, state_like):
    """dd_jax.memory's plan of the run (`state_like()`: a zero state of the run's
    structure), or None when the method has none."""
    del state_like
    return None

  def expert_params(self) -> Params | None:
    """The first expert's last epoch (H-PD's distance net), or None without experts."""
    return None

  def close(self) -> None:
    """Releases what the method opened (the expert reader)."""


def images_bytes(ctx: RunContext) -> int:
  """The synthetic images' float32 bytes (their optimiser state doubles it)."""
  d, p = ctx.config.distill, ctx.prepared
  return (ctx.set_size * int(np.prod(p.x_train.shape[1:])) * 4
          * (2 if d.img_momentum else 1))
