"""IDC (Kim et al. 2022, "Dataset Condensation via Efficient Synthetic-Data
Parameterization"): multi-formation images condensed by gradient matching, with the
matching network also trained on real data between matches.

One outer step (compiled), as the official condense.py: the stored images are clipped to
the pixel range [0, 1]; a fresh network; `matches` times: for each class, a real batch of
the class and the class's decoded synthetic images (at most `max_syn`, a random subset
above) are augmented together by every op of `match_strategy` in turn, one draw for the
whole batch (the official batch-shared DiffAug, whose color, crop and cutout all apply);
the distance between their CE gradients (conv kernels only: biases, norms and the
classifier are not matched; summed squared or absolute differences) moves the stored
images by one SGD(momentum) step per class (the momentum of the one optimiser carries
every image along, as the official per-class `optim_img.step()`); then the network
trains `net_steps` SGD steps on random real batches (every op of `net_strategy` with
per-sample draws, then CutMix with probability `cutmix_prob`).

Space: the official code stores pixels in [0, 1] and normalises inside its augmentation;
here the stored images are in the run's input space (normalised), so the clip is [0, 1]
mapped through the normalisation and each channel's gradient is divided by its std^2,
which makes an update at `lr_img` the official one in pixels (no rescaling with ZCA,
which IDC does not use). Real batches are drawn on the host from (seed, step), so a
resumed run draws the same. Pure functions of pytrees; the data are arguments.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dd_jax import training
from dd_jax.data import augment, indexing
from dd_jax.distill import guard, multiformation
from dd_jax.distill.state import DistillState, scaled
from dd_jax.errors import require, require_at_least

Array = jax.Array
Params = Any
PRNGKey = jax.Array

DISTANCES = ("mse", "l1")
_NET_INIT = 0x1dc   # NetInit's stream of the run seed


@dataclasses.dataclass(frozen=True)
class IDCSettings:
  num_classes: int
  ipc: int                   # stored images per class
  factor: int                # multi-formation: each stored image decodes into factor^2
  distance: str              # mse | l1: summed over the conv kernels' gradient entries
  matches: int               # matches per outer step (the official inner_loop)
  batch_real: int            # real images of a class per match, and per net step
  max_syn: int               # decoded synthetic images of a class per match (at most)
  lr_img: float
  img_momentum: float
  match_strategy: str        # augmentation shared by the real and synthetic batch
  net_strategy: str          # augmentation of the net's real batches (per sample)
  net_lr: float
  net_momentum: float
  net_weight_decay: float
  net_steps: int             # SGD steps of the net on real batches after each match
  cutmix_prob: float
  clip: tuple[tuple[float, ...], tuple[float, ...]] | None   # per-channel (low, high)
  grad_scale: tuple[float, ...] | None   # per channel: 1 / std^2 (pixel-space updates)
  nonfinite_lr_factor: float = 0.5
  frozen_per_class: int = 0  # SeqMatch: stored images per class of the earlier subsets

  @classmethod
  def from_config(cls, config, num_classes: int, pre,
                  frozen_per_class: int = 0) -> "IDCSettings":
    """From the config's `distill` and `idc` sections; `pre` (the data's Preprocessor)
    maps the [0, 1] clip into the input space (no clip with ZCA); `frozen_per_class`:
    SeqMatch's earlier subsets, stored images per class."""
    d, i = config.distill, config.idc
    clip = grad_scale = None
    if not config.data.zca:
      low = tuple(float(v) for v in (0.0 - pre.mean) / pre.std)
      high = tuple(float(v) for v in (1.0 - pre.mean) / pre.std)
      clip, grad_scale = (low, high), tuple(float(v) for v in 1.0 / pre.std ** 2)
    return cls(num_classes=num_classes, ipc=d.ipc, factor=i.factor, distance=i.distance,
               matches=i.matches, batch_real=d.batch_real, max_syn=i.max_syn,
               lr_img=d.lr_img, img_momentum=d.img_momentum,
               match_strategy=i.match_strategy, net_strategy=i.net_strategy,
               net_lr=i.net_lr, net_momentum=i.net_momentum,
               net_weight_decay=i.net_weight_decay, net_steps=i.net_steps,
               cutmix_prob=i.cutmix_prob, clip=clip, grad_scale=grad_scale,
               nonfinite_lr_factor=d.nonfinite_lr_factor, frozen_per_class=frozen_per_class)

  @property
  def decoded_per_class(self) -> int:
    """Decoded images of a class in a match: the earlier subsets' and this run's."""
    return (self.frozen_per_class + self.ipc) * self.factor * self.factor

  @property
  def syn_per_match(self) -> int:
    return min(self.decoded_per_class, self.max_syn)


def validate(config, image_shape) -> None:
  """The idc section's fields, one clear line each."""
  i = config.idc
  multiformation.check_factor(i.factor, image_shape)
  require(config.distill.pix_init == "real", "distill.pix_init",
          f"IDC starts from real images (its 'mix' of ipc x factor^2 per class), not "
          f"{config.distill.pix_init!r}", "use distill.pix_init='real'")
  require(i.distance in DISTANCES, "idc.distance", f"unknown {i.distance!r}",
          f"use one of {', '.join(DISTANCES)} (the official: mse for CIFAR, l1 for MNIST)")
  require_at_least(i, "idc", {"matches": 1, "max_syn": 1, "net_steps": 0, "fix_iter": 1})
  require(0.0 <= i.cutmix_prob <= 1.0, "idc.cutmix_prob", f"is {i.cutmix_prob}",
          "use a probability in [0, 1] (the official 0.5)")
  require(i.net_lr > 0, "idc.net_lr", f"is {i.net_lr}", "use a positive lr, e.g. 0.01")
  augment.check_strategy(i.match_strategy, "idc.match_strategy")
  augment.check_strategy(i.net_strategy, "idc.net_strategy")


def kernel_distance(g_real: Params, g_syn: Params, distance: str) -> Array:
  """Sum over the conv kernels (4-D leaves) of the summed squared ("mse") or absolute
  ("l1") differences of the two gradients; other leaves are not matched."""
  total = jnp.zeros(())
  for a, b in zip(jax.tree.leaves(g_real), jax.tree.leaves(g_syn)):
    if a.ndim != 4:
      continue
    diff = a - b
    total = total + (jnp.sum(diff * diff) if distance == "mse" else jnp.sum(jnp.abs(diff)))
  return total


def augment_all(key: PRNGKey, x: Array, strategy: str, shared: bool) -> Array:
  """Every op of `strategy` in turn (the official DiffAug with single=False: color,
  crop, cutout all apply). shared: one draw for the whole batch (every image the same
  parameters); else per-sample draws."""
  if not augment.enabled(strategy):
    return x
  for k, name in zip(jax.random.split(key, len(augment.parse_strategy(strategy))),
                     augment.parse_strategy(strategy)):
    op = augment.AUGMENTATIONS[name]
    x = (jax.vmap(lambda img, op=op, k=k: op(k, img[None])[0])(x) if shared else op(k, x))
  return x


def class_ce(model: nn.Module, params: Params, x: Array, c) -> Array:
  logits, _ = training.apply(model, params, {}, x, train=True)
  return jnp.mean(training.cross_entropy(logits, jnp.full((x.shape[0],), c, jnp.int32)))


def match_loss(model: nn.Module, params: Params, real: Array, syn: Array, c, key: PRNGKey,
               strategy: str, distance: str) -> Array:
  """IDC's distance for class `c`: real [B, H, W, ch] and syn [S, H, W, ch] augmented
  together (one draw), CE gradients of each, `kernel_distance`. Gradients flow to syn."""
  both = augment_all(key, jnp.concatenate([real, syn]), strategy, shared=True)
  xr, xs = both[:real.shape[0]], both[real.shape[0]:]
  g_real = jax.lax.stop_gradient(jax.grad(class_ce, argnums=1)(model, params, xr, c))
  g_syn = jax.grad(class_ce, argnums=1)(model, params, xs, c)
  return kernel_distance(g_real, g_syn, distance)


def class_match_loss(model: nn.Module, s: IDCSettings, images: Array, params: Params,
                     real: Array, c, key: PRNGKey, frozen: Array | None = None) -> Array:
  """Class `c`'s IDC loss as a function of all stored images [C * ipc, H, W, ch] (class
  grouped): its stored images decoded, at most `max_syn` of them (a random subset),
  matched against the real batch [B, H, W, ch] of the class. SeqMatch: `frozen`
  [C * frozen_per_class, ...] (class grouped) earlier subsets join the class's synthetic
  side, decoded, without gradients."""
  stored = jax.lax.dynamic_slice_in_dim(images, c * s.ipc, s.ipc)
  decoded = multiformation.decode(stored, s.factor)
  if s.frozen_per_class:
    earlier = jax.lax.dynamic_slice_in_dim(frozen, c * s.frozen_per_class,
                                           s.frozen_per_class)
    decoded = jnp.concatenate(
        [multiformation.decode(jax.lax.stop_gradient(earlier), s.factor), decoded])
  kpick, kaug = jax.random.split(key)
  if s.syn_per_match < s.decoded_per_class:
    decoded = decoded[jax.random.permutation(kpick, s.decoded_per_class)[:s.syn_per_match]]
  return match_loss(model, params, real, decoded, c, kaug, s.match_strategy, s.distance)


def net_optimizer(s: IDCSettings):
  """The matching net's SGD direction (momentum, weight decay; the lr applied after)."""
  return training.direction("sgd", s.net_momentum, s.net_weight_decay)


def make_net_step(model: nn.Module, s: IDCSettings):
  """net_step(net, x [B, ...], y [B], key) -> net: one SGD step on a real batch
  (per-sample augmentation, then CutMix)."""
  tx = net_optimizer(s)

  def net_step(net: training.NetState, x: Array, y: Array, key: PRNGKey):
    kaug, kmix = jax.random.split(key)
    x = augment_all(kaug, x, s.net_strategy, shared=False)
    x, perm, kept = augment.cutmix(kmix, x, s.cutmix_prob)

    def loss_fn(params):
      logits, _ = training.apply(model, params, {}, x, train=True)
      ce = training.cross_entropy
      return jnp.mean(kept * ce(logits, y) + (1.0 - kept) * ce(logits, y[perm]))

    grads = jax.grad(loss_fn)(net.params)
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    params = jax.tree.map(lambda p, u: p - s.net_lr * u, net.params, updates)
    return net.replace(params=params, opt_state=opt_state)

  return net_step


def clip_images(images: Array, clip) -> Array:
  """The stored images clipped to the pixel range (per channel, in the input space)."""
  if clip is None:
    return images
  low, high = (jnp.asarray(v, images.dtype) for v in clip)
  return jnp.clip(images, low, high)


def pixel_gradient(g: Array, grad_scale) -> Array:
  """An input-space gradient rescaled so that an SGD step is the official pixel-space one."""
  return g if grad_scale is None else g * jnp.asarray(grad_scale, g.dtype)


class Draw(NamedTuple):
  """What one IDC outer step draws: the real images each class is matched on
  (`real_idx` [matches, C, B]), the matching net's training batches (`net_idx`
  [matches, net_steps, B]) and its start (`init`: parameters, else None for a fresh net
  from the state's rng)."""
  real_idx: Array
  net_idx: Array
  init: Params | None = None


class RealData(NamedTuple):
  """What stays the same over a run: the real training set and SeqMatch's earlier
  subsets (`frozen`, class grouped, `s.frozen_per_class` each; None for the first)."""
  x_train: Array
  y_train: Array
  frozen: Array | None = None


def make_step(model: nn.Module, s: IDCSettings):
  """Returns step(state, draw: Draw, data: RealData) -> (state, metrics): one IDC outer
  step."""
  img_tx = optax.sgd(s.lr_img, momentum=s.img_momentum or None)
  net_tx = net_optimizer(s)
  net_step = make_net_step(model, s)
  class_loss = functools.partial(class_match_loss, model, s)

  def step(state: DistillState, draw: Draw, data: RealData):
    (real_idx, net_idx, init), (x_train, y_train, frozen) = draw, data
    key, rng = jax.random.split(state.rng)
    kinit, kloop = jax.random.split(key)
    if init is None:   # a fresh net every outer step (IDC's default)
      net = training.init_state(model, kinit, x_train[:1], net_tx)
    else:              # the block's net (`NetInit`)
      net = training.NetState(params=init, batch_stats={}, opt_state=net_tx.init(init))
    start = clip_images(state.images, s.clip)   # once per outer step, as the official

    def match(carry, inputs):
      images, img_opt, net = carry
      idx, nidx, k = inputs
      kcls, knet = jax.random.split(k)

      def one_class(carry, inputs):
        images, img_opt = carry
        c, cidx, kc = inputs
        loss, g = jax.value_and_grad(class_loss)(images, net.params, x_train[cidx], c, kc,
                                                 frozen)
        upd, img_opt = img_tx.update(pixel_gradient(g, s.grad_scale), img_opt, images)
        images = optax.apply_updates(images, scaled(upd, state.update_scale))
        return (images, img_opt), (loss, optax.tree.norm(g))

      (images, img_opt), (losses, norms) = jax.lax.scan(
          one_class, (images, img_opt),
          (jnp.arange(s.num_classes), idx, jax.random.split(kcls, s.num_classes)))

      def train(net, inputs):
        bidx, kb = inputs
        return net_step(net, x_train[bidx], y_train[bidx], kb), None

      if s.net_steps:
        net, _ = jax.lax.scan(train, net, (nidx, jax.random.split(knet, s.net_steps)))
      return (images, img_opt, net), (jnp.sum(losses), jnp.mean(norms))

    (images, img_opt, _), (losses, norms) = jax.lax.scan(
        match, (start, state.img_opt, net),
        (real_idx, net_idx, jax.random.split(kloop, s.matches)))
    return guard.finish_step(state, images, img_opt, rng, losses, norms,
                                 s.nonfinite_lr_factor)

  return step


@functools.lru_cache(maxsize=4)
def compiled_step(model: nn.Module, settings: IDCSettings):
  return jax.jit(make_step(model, settings))


class NetInit:
  """The matching net's start when it is not a fresh net every outer step: one net per
  block of `fix_iter` outer steps of a run (the official `--fix_iter`: a new net at
  step 0, fix_iter, ...), fresh from (seed, step_offset, block), or with `warm_start`
  (SeqMatch-IDC's official code) that net first trained on the earlier subsets. A
  resumed run rebuilds the same; the current block's net is kept."""

  def __init__(self, model: nn.Module, sample: Array, fix_iter: int, seed: int,
               step_offset: int = 0, warm_start=None):
    self.model, self.sample, self.fix_iter = model, sample, fix_iter
    self.key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), _NET_INIT),
                                  step_offset)
    self.warm_start = warm_start
    self._block, self._params = None, None

  @staticmethod
  def needed(fix_iter: int, warm_start) -> bool:
    return fix_iter > 1 or warm_start is not None

  def __call__(self, step: int) -> Params:
    block = step // self.fix_iter
    if block != self._block:
      key = jax.random.fold_in(self.key, block)
      if self.warm_start is None:
        self._params = self.model.init(key, self.sample, train=False)["params"]
      else:
        self._params = self.warm_start(self.model, key, self.sample)[0]
      self._block = block
    return self._params


class RealIndices:
  """The real batches of an outer step, drawn on the host from (seed, step): per match,
  `batch_real` images of each class (matching) and `net_steps` batches of `batch_real`
  from the whole training set (the net's training)."""

  def __init__(self, y_train: np.ndarray, num_classes: int, s: IDCSettings, seed: int):
    self.by_class = [np.flatnonzero(y_train == c) for c in range(num_classes)]
    self.n, self.s, self.seed = len(y_train), s, seed

  def indices(self, step: int) -> tuple[np.ndarray, np.ndarray]:
    s = self.s
    rng = np.random.default_rng([self.seed, step, 3])
    real = np.stack([np.stack([rng.choice(p, s.batch_real, replace=len(p) < s.batch_real)
                               for p in self.by_class]) for _ in range(s.matches)])
    net = rng.integers(0, self.n, (s.matches, s.net_steps, s.batch_real))
    return real.astype(np.int32), net.astype(np.int32)


def mix_init(x_train: np.ndarray, y_train: np.ndarray, num_classes: int, ipc: int,
             factor: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """IDC's "mix" initialisation: ipc * factor^2 real images of each class, each shrunk
  (nearest: every factor-th pixel) into one tile, laid out so that `decode` returns them
  in the order drawn. Labels class-grouped as every other initialisation."""
  labels = np.repeat(np.arange(num_classes, dtype=np.int32), ipc)
  n_tiles = factor * factor
  idx = indexing.sample_per_class(y_train, num_classes, ipc * n_tiles, seed=seed,
                                  field="distill.ipc")
  real = x_train[idx].astype(np.float32)          # class-grouped, ipc * f^2 per class
  if factor == 1:
    return real, labels
  n, h, w, c = real.shape
  th, tw = h // factor, w // factor
  small = real[:, ::factor, ::factor][:, :th, :tw]
  # Class k's drawn image t * ipc + j goes to tile t (row-major) of its stored image j.
  small = small.reshape(num_classes, factor, factor, ipc, th, tw, c)
  stored = small.transpose(0, 3, 1, 4, 2, 5, 6).reshape(num_classes * ipc, h, w, c)
  return stored, labels
