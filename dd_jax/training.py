"""The supervised training engine shared by expert training and evaluation.

Pure functions over a `NetState` pytree: one epoch is a `lax.scan` over shuffled
mini-batches (the last one padded and masked, so every sample counts once per epoch as
with PyTorch's DataLoader), DSA on every batch, and an update
`params -= lr * direction`, where `direction` is an optax transformation (weight decay,
momentum or Adam) and `lr` is a traced scalar: a learned lr or a new schedule value never
recompiles. Data arrays are always arguments, never closed over (XLA would fold them).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dd_jax import losses
from dd_jax.data import augment

Array = jax.Array
PRNGKey = jax.Array
Params = Any


@flax.struct.dataclass
class NetState:
  params: Params
  batch_stats: Params   # {} for nets without batch norm
  opt_state: optax.OptState


def direction(optimizer: str = "sgd", momentum: float = 0.0,
              weight_decay: float = 0.0) -> optax.GradientTransformation:
  """The update direction before the learning rate, as torch.optim applies it.

  torch SGD: buf = m * buf + (g + wd * p); p -= lr * buf. Adam: decoupled from lr too.
  """
  if optimizer == "sgd":
    parts = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
    if momentum:
      parts.append(optax.trace(decay=momentum, nesterov=False))
    return optax.chain(*parts) if parts else optax.identity()
  if optimizer == "adam":
    parts = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
    return optax.chain(*parts, optax.scale_by_adam())
  raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")


def cross_entropy(logits: Array, labels: Array) -> Array:
  """Per-sample CE. Integer labels: hard; float [B, C] labels: soft targets given as
  logits (DATM): -sum(log_softmax(x) * softmax(y))."""
  if jnp.issubdtype(labels.dtype, jnp.integer):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return -jnp.sum(jax.nn.log_softmax(logits) * jax.nn.softmax(labels), axis=-1)


def init_state(model: nn.Module, key: PRNGKey, sample: Array,
               tx: optax.GradientTransformation) -> NetState:
  variables = model.init(key, sample, train=False)
  params = variables["params"]
  return NetState(params=params, batch_stats=variables.get("batch_stats", {}),
                  opt_state=tx.init(params))


def apply(model: nn.Module, state_params: Params, batch_stats: Params, x: Array,
          train: bool, dropout_key: PRNGKey | None = None) -> tuple[Array, Params]:
  """Logits and the (possibly updated) batch statistics; `dropout_key` turns on the
  dropout of nets that have it (ViT) when training."""
  variables = {"params": state_params}
  rngs = {"dropout": dropout_key} if train and dropout_key is not None else {}
  if batch_stats:
    variables["batch_stats"] = batch_stats
    if train:
      logits, updates = model.apply(variables, x, train=True, mutable=["batch_stats"],
                                    rngs=rngs)
      return logits, updates["batch_stats"]
  return model.apply(variables, x, train=train, rngs=rngs), batch_stats


# A shuffled epoch as [num_batches, B] indices and a validity mask (last batch padded).
batch_plan = losses.permutation_batches


@dataclasses.dataclass(frozen=True)
class GSAM:
  """Surrogate-gap guided SAM (Zhuang et al. 2022), as DATM/PAD train their experts.

  With g the gradient at w: climb to w + e, e = rho * g / ||g|| (adaptive: e = rho *
  w^2 g / || |w| g ||); take g_p there; descend along g_p - alpha * (g minus its
  projection on g_p).
  """
  rho: float = 0.01
  alpha: float = 0.3
  adaptive: bool = True   # the official code's effective setting
  eps: float = 1e-12

  def direction(self, grad_fn: Callable[[Params], Params], params: Params,
                g: Params) -> Params:
    scale = ((lambda p: p * p) if self.adaptive else (lambda p: jnp.ones_like(p)))
    weighted = jax.tree.map(lambda p, x: (jnp.abs(p) if self.adaptive else 1.0) * x,
                            params, g)
    norm = optax.tree.norm(weighted)
    climbed = jax.tree.map(lambda p, x: p + self.rho * x * scale(p) / (norm + self.eps),
                           params, g)
    g_p = grad_fn(climbed)
    g_norm, p_norm = optax.tree.norm(g), optax.tree.norm(g_p)
    cosine = optax.tree.vdot(g, g_p) / (g_norm * p_norm + self.eps)
    return jax.tree.map(
        lambda a, b: b - self.alpha * (a - cosine * g_norm * b / (p_norm + self.eps)), g, g_p)


PENALTY_NORMS = ("sample", "channel")


@dataclasses.dataclass(frozen=True)
class GradientPenalty:
  """AST's gradient penalty: weight * E[(|grad_x sum(logits)| - target)^2].

  norm "sample" (paper): the L2 norm of each image's input gradient; "channel" (the
  official code): the L2 norm over channels at each pixel, the square averaged over
  pixels. Taken on the un-augmented batch, as the official code.
  """
  weight: float = 1.0
  target: float = 1.0
  norm: str = "sample"

  def __call__(self, logits_fn: Callable[[Array], Array], x: Array,
               weights: Array) -> Array:
    g = jax.grad(lambda inputs: jnp.sum(logits_fn(inputs)))(x)
    if self.norm == "sample":
      norms = jnp.sqrt(jnp.sum(g * g, axis=tuple(range(1, g.ndim))) + 1e-12)
      per_sample = jnp.square(norms - self.target)
    else:
      norms = jnp.sqrt(jnp.sum(g * g, axis=-1) + 1e-12)
      per_sample = jnp.mean(jnp.square(norms - self.target), axis=tuple(range(1, g.ndim - 1)))
    return self.weight * jnp.sum(per_sample * weights) / jnp.sum(weights)


def clipped_ce_scale(epoch: int, ramp_epochs: int, start: float = 0.5) -> float:
  """AST's clipped loss: the CE of (1-based) `epoch` is scaled by start + (1 - start)
  (epoch - 1) / ramp_epochs until it reaches 1 (ramp_epochs 0 = always 1). With start
  0.5 and 10 epochs this is the official code's 0.5, 0.55, ..., 0.95, then 1."""
  if not ramp_epochs:
    return 1.0
  return min(1.0, start + (1.0 - start) * (epoch - 1) / ramp_epochs)


@dataclasses.dataclass(frozen=True)
class _Batches:
  """How `make_train_epoch` forms and scores a batch."""
  model: nn.Module
  loss: Callable[[Array, Array], Array]
  dsa_mode: str
  dsa_strategy: str
  cutmix_prob: float
  teacher: nn.Module | None
  temperature: float
  penalty: "GradientPenalty | None"


def _batch_inputs(b: _Batches, images, labels, idx, key, teacher_variables):
  """The augmented (and CutMixed) batch: (inputs, clean images, labels, CutMix partner
  labels, kept area, targets: the labels or the teacher's tempered logits)."""
  clean = images[idx]
  x = augment.augment_batch(b.dsa_mode, key, clean, b.dsa_strategy)
  y = labels[idx]
  partner, kept = y, 1.0
  if b.cutmix_prob > 0:
    x, perm, kept = augment.cutmix(jax.random.fold_in(key, 2), x, b.cutmix_prob)
    partner = y[perm]
  targets = y
  if b.teacher is not None:
    targets = b.teacher.apply(teacher_variables, x, train=False) / b.temperature
  return x, clean, y, partner, kept, targets


def _batch_loss(b: _Batches, state, x, clean, partner, kept, targets, weights, scale,
                dropout_key):
  """params -> (the batch's weighted loss (+ AST's penalty), (logits, batch stats))."""

  def loss_fn(params):
    logits, new_stats = apply(b.model, params, state.batch_stats, x, train=True,
                              dropout_key=dropout_key)
    if b.teacher is not None:
      per_sample = b.temperature ** 2 * b.loss(logits / b.temperature, targets)
    elif b.cutmix_prob > 0:
      per_sample = kept * b.loss(logits, targets) + (1.0 - kept) * b.loss(logits, partner)
    else:
      per_sample = b.loss(logits, targets)
    value = scale * jnp.sum(per_sample * weights) / jnp.sum(weights)
    if b.penalty is not None:
      value = value + b.penalty(
          lambda inputs: apply(b.model, params, state.batch_stats, inputs, train=True)[0],
          clean, weights)
    return value, (logits, new_stats)

  return loss_fn


def make_train_epoch(model: nn.Module, tx: optax.GradientTransformation, batch_size: int,
                     dsa_strategy: str, loss: Callable[[Array, Array], Array] = cross_entropy,
                     sam: GSAM | None = None, penalty: GradientPenalty | None = None,
                     teacher: nn.Module | None = None, temperature: float = 1.0,
                     dsa_mode: str = "one", cutmix_prob: float = 0.0):
  """Returns epoch(state, lr, images, labels, key, loss_scale=1, teacher_variables=None)
  -> (state, mean_loss, accuracy). With `sam`, each gradient is replaced by GSAM's
  direction (two gradients per batch); `loss_scale` multiplies the data loss (AST's
  clipped CE, traced: no recompile); `penalty` adds AST's gradient penalty (the reported
  loss includes both). With a `teacher` (knowledge distillation), the targets of each
  augmented batch are the teacher's logits on it: the loss is T^2 x the soft cross-entropy
  of the student's logits / T to softmax(teacher's / T) (KL up to a constant), `labels`
  only count the training accuracy. `dsa_mode` "idc" augments as IDC's evaluation
  (`augment.dsa_idc`); `cutmix_prob` > 0 then pastes a CutMix box into the batch with
  that probability, the loss weighted between the two images' labels by area (with a
  teacher, its outputs on the mixed batch are the targets)."""

  b = _Batches(model, loss, dsa_mode, dsa_strategy, cutmix_prob, teacher, temperature,
               penalty)

  def train_step(carry, batch):
    state, lr, images, labels, scale, teacher_variables = carry
    idx, mask, key = batch
    x, clean, y, partner, kept, targets = _batch_inputs(b, images, labels, idx, key,
                                                        teacher_variables)
    weights = mask.astype(x.dtype)
    loss_fn = _batch_loss(b, state, x, clean, partner, kept, targets, weights, scale,
                          jax.random.fold_in(key, 1))
    (value, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    if sam is not None:
      grads = sam.direction(lambda p: jax.grad(lambda q: loss_fn(q)[0])(p), state.params,
                            grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p - lr * u, state.params, updates)
    hard = y if y.ndim == 1 else jnp.argmax(y, -1)
    correct = jnp.sum((jnp.argmax(logits, -1) == hard) * weights)
    state = NetState(params=params, batch_stats=new_stats, opt_state=opt_state)
    return ((state, lr, images, labels, scale, teacher_variables),
            (value * jnp.sum(weights), correct))

  def epoch(state: NetState, lr: Array, images: Array, labels: Array, key: PRNGKey,
            loss_scale: Array | float = 1.0, teacher_variables=None):
    kplan, kaug = jax.random.split(key)
    idx, mask = batch_plan(kplan, images.shape[0], batch_size)
    keys = jax.random.split(kaug, idx.shape[0])
    scale = jnp.asarray(loss_scale, jnp.float32)
    (state, *_), (losses, correct) = jax.lax.scan(
        train_step, (state, lr, images, labels, scale, teacher_variables), (idx, mask, keys))
    n = images.shape[0]
    return state, jnp.sum(losses) / n, jnp.sum(correct) / n

  return epoch


def make_accuracy(model: nn.Module, chunk: int = 1000):
  """Returns accuracy(params, batch_stats, images, labels) over a whole set, in chunks."""

  def accuracy(params, batch_stats, images, labels):
    n = images.shape[0]
    c = min(chunk, n)
    full = n // c * c

    def body(total, xy):
      x, y = xy
      logits, _ = apply(model, params, batch_stats, x, train=False)
      return total + jnp.sum(jnp.argmax(logits, -1) == y), None

    xs = images[:full].reshape((-1, c) + images.shape[1:])
    ys = labels[:full].reshape(-1, c)
    total, _ = jax.lax.scan(body, jnp.zeros((), jnp.int32), (xs, ys))
    if full < n:
      logits, _ = apply(model, params, batch_stats, images[full:], train=False)
      total = total + jnp.sum(jnp.argmax(logits, -1) == labels[full:])
    return total / n

  return accuracy
