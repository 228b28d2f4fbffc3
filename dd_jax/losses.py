"""Trajectory matching as pure functions over parameter pytrees.

Importable from any JAX code; nothing here knows about configs, files or Flax modules:

  mask = make_mask(TorchLayout.of(model, shape).positions(), "depth", 0.25)  # PAD
  mask = make_mask(leaf_positions(params), "depth", 0.25)   # any pytree, leaf order
  loss = trajectory_matching_loss(student_end, target, start, mask)
  end = unroll(per_sample_loss, start, lr, images, labels, batch_idx, batch_mask, keys,
               augment=my_dsa, remat=True)
  meta_grads = jax.grad(lambda x, lr: trajectory_matching_loss(
      unroll(per_sample_loss, start, lr, x, labels, ...), target, start))(images, lr)

`unroll` is a `lax.scan` of `inner_step`, differentiable with respect to the images,
the labels (soft labels, DATM) and the student learning rate; `remat=True` wraps the
scanned step in `jax.checkpoint`, so reverse mode stores one parameter vector per step
instead of every activation of every step.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PRNGKey = jax.Array
Params = Any   # a pytree of arrays
Mask = Any     # a pytree of bools with the structure of Params (leaf or element-wise)

# per_sample_loss(params, x [B, ...], y [B, ...]) -> [B] losses.
PerSampleLoss = Callable[[Params, Array, Array], Array]
# augment(key, x [B, ...]) -> x, the same augmentation for the whole batch call.
Augment = Callable[[PRNGKey, Array], Array]


def squared_distance(a: Params, b: Params, mask: Mask | None = None) -> Array:
  """sum((a - b)^2) over every (unmasked) element of two pytrees."""
  if mask is None:
    parts = jax.tree.map(lambda x, y: jnp.sum(jnp.square(x - y)), a, b)
  else:
    parts = jax.tree.map(lambda x, y, m: jnp.sum(jnp.square(x - y) * m), a, b, mask)
  return sum(jax.tree.leaves(parts), jnp.zeros((), jnp.float32))


def trajectory_matching_loss(student_end: Params, target: Params, start: Params,
                             mask: Mask | None = None) -> Array:
  """MTT's normalised distance: |theta_N - theta*_{t+M}|^2 / |theta*_t - theta*_{t+M}|^2.

  Args:
    student_end: student parameters after the unroll.
    target: expert parameters at epoch t + M.
    start: expert parameters at epoch t (where the student started).
    mask: optional bool pytree (same structure; leaves bool scalars or arrays of the
      leaf's shape): elements where it is False count in neither sum (PAD drops the
      shallow layers this way).
  Returns:
    A scalar. The official code divides both sums by the parameter count; it cancels.
  """
  return (squared_distance(student_end, target, mask)
          / squared_distance(start, target, mask))


INTERMEDIATE_WEIGHTS = ("none", "equal", "proportional")


def intermediate_steps(syn_steps: int, expert_epochs: int) -> tuple[int, ...]:
  """AST's intermediate matching points: after floor(k N / M) student steps the student
  is matched to expert epoch t + k, k = 1..M-1 (evenly spaced; the official code's
  (N // M) k is the same when M divides N)."""
  if expert_epochs > syn_steps:
    raise ValueError(f"intermediate matching needs at least one student step per expert "
                     f"epoch: {expert_epochs - 1} intermediate points do not fit in "
                     f"{syn_steps} steps")
  return tuple(k * syn_steps // expert_epochs for k in range(1, expert_epochs))


def intermediate_weights(expert_epochs: int, rule: str) -> tuple[float, ...]:
  """beta_k for k = 1..M-1: "equal" (1, the paper's default) or "proportional" (k/M)."""
  if rule not in INTERMEDIATE_WEIGHTS[1:]:
    raise ValueError(f"intermediate weights are 'equal' or 'proportional', got {rule!r}")
  m = expert_epochs
  return tuple(1.0 if rule == "equal" else k / m for k in range(1, m))


def intermediate_matching_loss(students: list[Params], experts: list[Params],
                               start: Params, weights: tuple[float, ...],
                               mask: Mask | None = None) -> Array:
  """sum_k beta_k |theta_hat_k - theta*_{t+k}|^2 / |theta*_t - theta*_{t+k}|^2 (AST):
  each intermediate student against the expert epoch it should have reached."""
  if not len(students) == len(experts) == len(weights):
    raise ValueError(f"intermediate matching: {len(students)} students, {len(experts)} "
                     f"expert snapshots and {len(weights)} weights must agree")
  total = jnp.zeros((), jnp.float32)
  for student, expert, beta in zip(students, experts, weights):
    total = total + beta * trajectory_matching_loss(student, expert, start, mask)
  return total


def balanced_loss_scale(start_epoch, max_start_epoch: int, offset: float = 8.0,
                        base: float = float(np.e)):
  """AST's balanced inner-loop loss: the student's CE is scaled by
  log(t - middle + offset) when t >= middle, else by 1 / log(middle - t + offset), with
  middle = max_start_epoch // 2 and logarithms in `base` (paper: natural; code: 5).
  Early segments (large expert gradients) take smaller steps, late ones larger."""
  middle = max_start_epoch // 2
  gap = jnp.abs(jnp.asarray(start_epoch, jnp.float32) - middle)
  log = jnp.log(gap + offset) / np.log(base)
  return jnp.where(jnp.asarray(start_epoch) >= middle, log, 1.0 / log)


PERTURB_STYLES = ("filter", "tensor")


def perturb_weights(key: PRNGKey, params: Params, rho: float,
                    style: str = "filter") -> Params:
  """AST's weight perturbation of the starting expert.

  "filter" (paper, filter-normalised as Li et al.'s loss landscapes): for every kernel
  (a leaf with ndim >= 2; filters along the last, output axis), d ~ N(0, I) rescaled per
  filter to that filter's norm, theta + rho d; biases and norm parameters unchanged.
  "tensor" (the official code): conv kernels (ndim 4) only, d ~ N(0, I) / |d|_F over
  the whole tensor, theta + rho * d * theta (elementwise; the code uses rho = 1).
  """
  if style not in PERTURB_STYLES:
    raise ValueError(f"perturbation style must be one of {PERTURB_STYLES}, got {style!r}")
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  out = []
  for k, w in zip(keys, leaves):
    if w.ndim < 2 or (style == "tensor" and w.ndim != 4):
      out.append(w)
      continue
    d = jax.random.normal(k, w.shape, w.dtype)
    if style == "filter":
      axes = tuple(range(w.ndim - 1))
      d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
      w_norm = jnp.sqrt(jnp.sum(jnp.square(w), axis=axes, keepdims=True))
      out.append(w + rho * d * w_norm / jnp.maximum(d_norm, 1e-12))
    else:
      out.append(w + rho * d / jnp.linalg.norm(d.ravel()) * w)
  return jax.tree.unflatten(treedef, out)


# depth: drop the shallowest (PAD's FIEM); deep: drop the deepest (PAD's Table 5b
# ablation); loss: drop the best-matched of each unroll (loss_ranked_mask).
MASK_RULES = ("none", "depth", "deep", "loss")


def make_mask(positions: Params, rule: str, ratio: float) -> Mask | None:
  """A bool mask pytree for `trajectory_matching_loss` (PAD's FIEM).

  Args:
    positions: int pytree with the params' structure: each element's index in the
      flattened parameter order the rule counts in (the official PyTorch order comes from
      `dd_jax.models.torch_layout.TorchLayout.positions()`).
    rule: "none" (no mask: returns None), "depth": drop the first
      floor(ratio * num_params) entries of that order, i.e. the shallow layers, or
      "deep": drop the last floor(ratio * num_params), the deep layers (PAD's Table 5b).
      ("loss" masks depend on each unroll: see `loss_ranked_mask`.)
    ratio: the fraction dropped, in [0, 1).
  Returns:
    A pytree of bool arrays (True = counted in the loss), or None for "none".
  """
  if rule not in ("none", "depth", "deep"):
    raise ValueError(f"make_mask builds 'none', 'depth' or 'deep' masks, got {rule!r}")
  if not 0.0 <= ratio < 1.0:
    raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
  if rule == "none":
    return None
  total = sum(int(x.size) for x in jax.tree.leaves(positions))
  cut = int(ratio * total)
  if rule == "deep":
    return jax.tree.map(lambda pos: pos < total - cut, positions)
  return jax.tree.map(lambda pos: pos >= cut, positions)


def leaf_positions(params: Params) -> Params:
  """An int pytree for `make_mask`: each element's index when the leaves are laid end
  to end in `jax.tree.leaves` order (for Flax, modules in name order: give layers names
  that sort by depth, or build the PyTorch order with dd_jax.models.torch_layout)."""
  leaves, treedef = jax.tree.flatten(params)
  out, offset = [], 0
  for leaf in leaves:
    size = int(np.size(leaf))
    out.append(np.arange(offset, offset + size).reshape(np.shape(leaf)))
    offset += size
  return jax.tree.unflatten(treedef, out)


def loss_ranked_mask(student_end: Params, target: Params, ratio: float) -> Mask:
  """PAD's loss-ranked mask: drops the floor(ratio * n) parameters with the lowest
  (theta_N - theta*)^2 of this unroll (ties by index, as a sort). Recomputed every step;
  autodiff treats it as a constant, as the official index selection does."""
  if not 0.0 <= ratio < 1.0:
    raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
  per_element = jax.tree.map(lambda a, b: jnp.square(a - b), student_end, target)
  leaves, treedef = jax.tree.flatten(jax.lax.stop_gradient(per_element))
  flat = jnp.concatenate([x.ravel() for x in leaves])
  cut = int(ratio * flat.size)
  keep = jnp.ones(flat.size, bool).at[jnp.argsort(flat)[:cut]].set(False)
  offsets = np.cumsum([x.size for x in leaves])[:-1]
  parts = jnp.split(keep, offsets)
  return jax.tree.unflatten(treedef, [p.reshape(x.shape) for p, x in zip(parts, leaves)])


def sgd_step(params: Params, grads: Params, lr: Array) -> Params:
  """params - lr * grads, leaf by leaf (the student's plain SGD update)."""
  return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def inner_step(per_sample_loss: PerSampleLoss, params: Params, lr: Array, x: Array,
               y: Array, weights: Array | None = None, velocity: Params | None = None,
               momentum: float = 0.0) -> tuple[Params, Params | None, Array]:
  """One student step on a batch: SGD on the (weighted) mean per-sample loss.

  Args:
    weights: [B] sample weights (0 for padding in a short last batch); None = all 1.
    velocity, momentum: heavy-ball momentum as the AST code's inner loop (and
      torch.optim.SGD): v = momentum * v + g; params -= lr * v. With momentum 0 the
      velocity is None (plain SGD, MTT).
  Returns:
    (new params, new velocity, the batch loss before the step).
  """
  def batch_loss(p):
    losses = per_sample_loss(p, x, y)
    if weights is None:
      return jnp.mean(losses)
    return jnp.sum(losses * weights) / jnp.maximum(jnp.sum(weights), 1.0)

  value, grads = jax.value_and_grad(batch_loss)(params)
  if momentum:
    velocity = jax.tree.map(lambda v, g: momentum * v + g, velocity, grads)
    grads = velocity
  return sgd_step(params, grads, lr), velocity, value


def _check_unroll_shapes(images: Array, labels: Array, batch_idx: Array,
                         batch_mask: Array | None, keys: Array | None) -> None:
  if images.shape[0] != labels.shape[0]:
    raise ValueError(f"unroll: images and labels must share the leading (sample) "
                     f"dimension; got images {images.shape} and labels {labels.shape}")
  if batch_idx.ndim != 2:
    raise ValueError(f"unroll: batch_idx must be [num_steps, batch_size] sample indices; "
                     f"got shape {batch_idx.shape}")
  if batch_mask is not None and batch_mask.shape != batch_idx.shape:
    raise ValueError(f"unroll: batch_mask must have batch_idx's shape {batch_idx.shape}; "
                     f"got {batch_mask.shape}")
  if keys is not None and keys.shape[0] != batch_idx.shape[0]:
    raise ValueError(f"unroll: one PRNG key per step is needed: keys has leading "
                     f"dimension {keys.shape[0]}, batch_idx has {batch_idx.shape[0]} steps")


# What a rematerialised unroll step keeps for the backward pass (the rest is recomputed):
# nothing (least memory, one more forward per step), or the matmul / convolution outputs
# (dots: most of the activations' memory; dots_no_batch: only those without a batch
# dimension, i.e. none of a conv net's activations).
REMAT_POLICIES = {
    "nothing": None,
    "dots": jax.checkpoint_policies.dots_saveable,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def remat_policy(name: str) -> Callable | None:
  """The `jax.checkpoint` policy called `name` in REMAT_POLICIES."""
  if name not in REMAT_POLICIES:
    raise ValueError(f"remat policy must be one of {sorted(REMAT_POLICIES)}, got {name!r}")
  return REMAT_POLICIES[name]


def unroll(per_sample_loss: PerSampleLoss, params: Params, lr: Array, images: Array,
           labels: Array, batch_idx: Array, batch_mask: Array | None = None,
           keys: Array | None = None, *, augment: Augment | None = None,
           remat: bool = False, remat_policy: Callable | None = None,
           momentum: float = 0.0, constrain: Callable[[Array], Array] | None = None
           ) -> tuple[Params, Array]:
  """N student SGD steps on mini-batches of (images, labels), compiled with `lax.scan`.

  Args:
    per_sample_loss: (params, x, y) -> [B] losses.
    params: the student's starting parameters (an expert snapshot).
    lr: scalar student learning rate (differentiable).
    images: [n, ...] synthetic images; labels: [n] int or [n, C] soft labels.
    batch_idx: [N, B] indices into images: step i uses images[batch_idx[i]].
    batch_mask: [N, B] bool, False for padding in a short batch (None: all valid).
    keys: [N] PRNG keys for `augment`, one per step (needed when augment is given).
    augment: optional (key, x) -> x applied to every batch (DSA).
    remat: rematerialise each step in the backward pass (memory O(N * |params|) instead
      of O(N * activations)); remat_policy: a `jax.checkpoint_policies` entry.
    momentum: heavy-ball momentum of the student (0 = plain SGD, see `inner_step`).
    constrain: applied to each step's batch (images, labels, weights) after the
      gather, e.g. a `with_sharding_constraint` that splits it over devices
      (dd_jax.sharding.Placement.batch).
  Returns:
    (parameters after N steps, [N] batch losses).
  """
  end, inner, _ = unroll_with_snapshots(
      per_sample_loss, params, lr, images, labels, batch_idx, batch_mask, keys, at=(),
      augment=augment, remat=remat, remat_policy=remat_policy, momentum=momentum,
      constrain=constrain)
  return end, inner


def unroll_with_snapshots(per_sample_loss: PerSampleLoss, params: Params, lr: Array,
                          images: Array, labels: Array, batch_idx: Array,
                          batch_mask: Array | None = None, keys: Array | None = None, *,
                          at: tuple[int, ...], augment: Augment | None = None,
                          remat: bool = False, remat_policy: Callable | None = None,
                          momentum: float = 0.0,
                          constrain: Callable[[Array], Array] | None = None
                          ) -> tuple[Params, Array, list[Params]]:
  """`unroll` that also returns the student after the steps in `at` (AST's intermediate
  matching): the scan is cut into consecutive pieces at those steps, all inside the
  caller's trace, so memory grows by one parameter vector per snapshot.

  Args:
    at: strictly increasing step counts in 1..N-1 (the student after `at[k]` steps).
  Returns:
    (parameters after N steps, [N] batch losses, [parameters after at[k] steps]).
  """
  _check_unroll_shapes(images, labels, batch_idx, batch_mask, keys)
  if augment is not None and keys is None:
    raise ValueError("unroll: augment needs keys (one PRNG key per step)")
  lr = jnp.asarray(lr)
  if lr.ndim != 0:
    raise ValueError(f"unroll: lr must be a scalar, got shape {lr.shape}")
  num_steps = batch_idx.shape[0]
  at = tuple(int(a) for a in at)
  if any(not 0 < a < num_steps for a in at) or list(at) != sorted(set(at)):
    raise ValueError(f"unroll: snapshot steps must be strictly increasing in "
                     f"1..{num_steps - 1} (the unroll has {num_steps} steps); got {at}")

  def step(carry, inputs):
    p, v = carry
    idx, mask, key = inputs
    x, y = images[idx], labels[idx]
    weights = None if mask is None else mask.astype(x.dtype)
    if constrain is not None:
      x, y = constrain(x), constrain(y)
      weights = None if weights is None else constrain(weights)
    if augment is not None:
      x = augment(key, x)
    p, v, value = inner_step(per_sample_loss, p, lr, x, y, weights, v, momentum)
    return (p, v), value

  if remat:
    step = jax.checkpoint(step, policy=remat_policy)
  velocity = jax.tree.map(jnp.zeros_like, params) if momentum else None
  carry, snapshots, inner = (params, velocity), [], []
  for lo, hi in zip((0,) + at, at + (num_steps,)):
    piece = jax.tree.map(lambda a: None if a is None else a[lo:hi],
                         (batch_idx, batch_mask, keys), is_leaf=lambda a: a is None)
    carry, values = jax.lax.scan(step, carry, piece)
    snapshots.append(carry[0])
    inner.append(values)
  return snapshots[-1], jnp.concatenate(inner), snapshots[:-1]


def permutation_batches(key: PRNGKey, n: int, batch_size: int) -> tuple[Array, Array]:
  """One shuffled pass over n samples as ([P, B] indices, [P, B] validity mask).

  B = min(batch_size, n), P = ceil(n / B); when B does not divide n the last batch is
  padded (index 0) and masked, so every sample counts once per pass, as with
  `torch.split` of a permutation or a DataLoader without drop_last.
  """
  b = min(batch_size, n)
  num_batches = -(-n // b)
  perm = jax.random.permutation(key, n)
  pad = num_batches * b - n
  idx = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)]).reshape(num_batches, b)
  mask = (jnp.arange(num_batches * b) < n).reshape(num_batches, b)
  return idx, mask


def batch_schedule(key: PRNGKey, n: int, batch_size: int, num_steps: int
                   ) -> tuple[Array, Array]:
  """The official inner-loop batch order: permutations of the n synthetic samples cut
  into batches, a fresh permutation whenever one is used up.

  Returns:
    ([num_steps, B] indices, [num_steps, B] validity mask), see `permutation_batches`.
  """
  per_pass = -(-n // min(batch_size, n))
  passes = -(-num_steps // per_pass)
  idx, mask = jax.vmap(lambda k: permutation_batches(k, n, batch_size))(
      jax.random.split(key, passes))
  b = idx.shape[-1]
  return idx.reshape(-1, b)[:num_steps], mask.reshape(-1, b)[:num_steps]
