"""The distillation state: a pytree holding everything a step changes.

Synthetic images and labels are plain arrays (not module parameters). The student
learning rate is stored as `lr_param`: the lr itself ("linear", the official
parameterisation, SGD directly on lr, clamped at `min_syn_lr` so it can never go
negative or NaN) or its log ("log": positive by construction).
"""
from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dd_jax.data import indexing

Array = jax.Array
PRNGKey = jax.Array

LR_PARAMS = ("linear", "log")
# correct: DATM (distill/labels.py); kmeans: AST (distill/representative.py)
PIX_INITS = ("real", "noise", "correct", "kmeans")


@flax.struct.dataclass
class DistillState:
  images: Array          # [num_classes * ipc, H, W, C], network-input space (GLaD:
                         # the latents {"ws", "f"} they are rendered from)
  labels: Array          # [num_classes * ipc] int (hard) or [.., num_classes] soft logits
  lr_param: Array        # scalar: the student lr, or its log (see module doc)
  img_opt: optax.OptState
  lr_opt: optax.OptState
  label_opt: optax.OptState   # soft labels' optimiser state; EmptyState for hard labels
  step: Array            # int32 scalar: outer steps done
  rng: PRNGKey           # advanced every step
  update_scale: Array    # f32 scalar multiplying every outer update (images, lr, labels):
                         # 1, times distill.nonfinite_lr_factor after each rolled-back step


def lr_to_param(lr, parameterisation: str) -> Array:
  lr = jnp.asarray(lr, jnp.float32)
  return jnp.log(lr) if parameterisation == "log" else lr


def param_to_lr(param: Array, parameterisation: str) -> Array:
  return jnp.exp(param) if parameterisation == "log" else param


def optimizers(d) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """Images: SGD(lr_img, momentum); lr: SGD(lr_lr, momentum) (torch.optim.SGD semantics:
  optax.sgd's trace is the same heavy-ball buffer). `d`: anything with those fields
  (the `distill` config section, StepSettings)."""
  return (optax.sgd(d.lr_img, momentum=d.img_momentum or None),
          optax.sgd(d.lr_lr, momentum=d.lr_momentum or None))


def label_optimizer(d) -> optax.GradientTransformation:
  """Soft labels (DATM): SGD(lr_y, momentum label_momentum)."""
  return optax.sgd(d.lr_y, momentum=d.label_momentum or None)


def initial_images(x_train: np.ndarray, y_train: np.ndarray, num_classes: int, ipc: int,
                   pix_init: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Class-grouped labels [0]*ipc + [1]*ipc + ... and images: random real samples of
  each class (seeded), or standard-normal noise."""
  labels = np.repeat(np.arange(num_classes, dtype=np.int32), ipc)
  if pix_init == "real":
    idx = indexing.sample_per_class(y_train, num_classes, ipc, seed=seed,
                                    field="distill.ipc")
    return x_train[idx].astype(np.float32), labels
  rng = np.random.default_rng(seed)
  noise = rng.standard_normal((num_classes * ipc,) + x_train.shape[1:])
  return noise.astype(np.float32), labels


def create(distill_config, images, labels: np.ndarray, seed: int,
           img_tx: optax.GradientTransformation | None = None) -> DistillState:
  """The state before step 0 from the initial images (or GLaD's latents {"ws", "f"},
  with their optimiser `img_tx`) and labels (int class ids, or float soft-label
  logits, which are then optimised)."""
  d = distill_config
  pixel_tx, lr_tx = optimizers(d)
  img_tx = img_tx or pixel_tx
  images = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), images)
  labels = jnp.asarray(labels)
  soft = jnp.issubdtype(labels.dtype, jnp.floating)
  lr_param = lr_to_param(d.lr_teacher, d.syn_lr_param)
  return DistillState(images=images, labels=labels, lr_param=lr_param,
                      img_opt=img_tx.init(images), lr_opt=lr_tx.init(lr_param),
                      label_opt=label_optimizer(d).init(labels) if soft
                      else optax.EmptyState(),
                      step=jnp.zeros((), jnp.int32),
                      rng=jax.random.fold_in(jax.random.PRNGKey(seed), 1),
                      update_scale=jnp.ones((), jnp.float32))


def scaled(updates, scale: Array):
  """Optimiser updates times the state's update_scale (a lower lr, momentum kept)."""
  return jax.tree.map(lambda u: u * scale.astype(u.dtype), updates)


def after_step(state: DistillState, finite: Array, factor: float) -> Array:
  """The update scale after a step: kept when it was finite, times `factor` if not."""
  return jnp.where(finite, state.update_scale, state.update_scale * factor)
