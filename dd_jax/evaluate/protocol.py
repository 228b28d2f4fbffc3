"""The evaluation protocol: train fresh nets on a (synthetic) set, report test accuracy.

`protocol="mtt"` (the default) is the official `evaluate_synset` of MTT (and of DC, DSA,
DM, DATM, PAD, AST and SeqMatch, which share it): SGD momentum 0.9, weight decay 5e-4,
batch 256, one DSA op on every batch, `epochs + 1` epochs (its `range(Epoch + 1)`), the lr
x0.1 after epoch `epochs // 2 + 1` with a fresh optimiser (momentum buffers zero), test
accuracy at the end. `protocol="legacy"` is dd_jax's protocol before it matched the
official one (exactly `epochs` epochs, x0.1 from epoch `epochs // 2` on, momentum kept):
it reproduces figures measured before 2026-12 (benchmarks/eval_parity.py compares them).
`num_nets` nets (5 by default) are trained together under `jax.vmap`, epochs run inside
`lax.scan` in chunks (one compilation, progress between chunks). Hard (int) or soft
(float logits) labels.

`protocol="idc"` is IDC's evaluation instead (its train.py, as its argument.py sets it
for 28/32 px sets): lr x0.2 at 2/3 and again at 5/6 of the epochs (MultiStepLR), CutMix
with probability 0.5 (Beta(1, 1) boxes, partner from a permutation of the batch) after
the augmentation, and its DiffAug: flip and color on every batch, one of the other ops
(`augment.dsa_idc`). Its batch size and epochs are the config's (the IDC configs: 64).
"""
from __future__ import annotations

import dataclasses
import functools
import time

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from dd_jax import models, sharding, training
from dd_jax.data import augment


@dataclasses.dataclass(frozen=True)
class EvalResult:
  arch: str
  accuracies: np.ndarray   # [num_nets] test accuracy of each net, in [0, 1]
  train_loss: np.ndarray   # [num_nets] last epoch's training loss
  epochs: int
  seconds: float
  # Sequential evaluation (SeqMatch): the nets' mean test accuracy after each stage.
  stage_means: tuple[float, ...] = ()

  @property
  def mean(self) -> float:
    return float(np.mean(self.accuracies))

  @property
  def std(self) -> float:
    return float(np.std(self.accuracies))

  def summary(self) -> str:
    stages = (" (after each stage: " + ", ".join(f"{100 * m:.2f}" for m in self.stage_means)
              + "%)" if len(self.stage_means) > 1 else "")
    return (f"{self.arch}: {100 * self.mean:.2f} +- {100 * self.std:.2f}%{stages} "
            f"({len(self.accuracies)} nets, {self.epochs} epochs, {self.seconds:.0f}s)")


@dataclasses.dataclass(frozen=True)
class Recipe:
  """How a protocol trains an evaluation net beyond the shared SGD settings."""
  milestones: tuple[tuple[int, int], ...]   # lr decays at epochs * a // b + shift ...
  gamma: float                               # ... by this factor each time
  dsa_mode: str                              # augment.augment_batch's mode
  cutmix_prob: float
  shift: int = 0              # the first decayed epoch is epochs * a // b + shift
  extra_epoch: bool = False   # train epochs + 1 epochs (the official range(Epoch + 1))
  fresh_optimizer: bool = False   # momentum buffers zero from each milestone on


DEFAULT_RECIPE = "mtt"   # eval.protocol's default: the official evaluate_synset
RECIPES = {
    # MTT's evaluate_synset: lr_schedule = [Epoch // 2 + 1], checked after training that
    # epoch, so Epoch // 2 + 2 is the first at lr x0.1, trained with a new SGD.
    "mtt": Recipe(((1, 2),), 0.1, "one", 0.0, shift=2, extra_epoch=True,
                  fresh_optimizer=True),
    "legacy": Recipe(((1, 2),), 0.1, "one", 0.0),
    # AST's paper: "reduction by half at the 500-th iteration" of 1000 (ast.txt line 350)
    "ast": Recipe(((1, 2),), 0.5, "one", 0.0),
    # AST's code: evaluate_synset's schedule at x0.5 (its momentum 0.8 after the cut and
    # its best-epoch accuracy are not reproduced)
    "ast_code": Recipe(((1, 2),), 0.5, "one", 0.0, shift=2, extra_epoch=True,
                       fresh_optimizer=True),
    "idc": Recipe(((2, 3), (5, 6)), 0.2, "idc", 0.5),
}


def stage_epochs(protocol: str, epochs: int) -> int:
  """How many epochs a net trains for `epochs` (per stage) under `protocol`."""
  return epochs + int(RECIPES[protocol].extra_epoch)


def lr_milestones(protocol: str, epochs: int, offset: int = 0) -> np.ndarray:
  """The epochs (counted from `offset`, a stage's first) from which the lr decays."""
  recipe = RECIPES[protocol]
  return np.asarray([offset + epochs * a // b + recipe.shift for a, b in recipe.milestones],
                    np.int32)


def epoch_lr(base_lr, epoch, milestones, gamma: float):
  """The lr of `epoch`: base_lr x gamma for each milestone it has reached (traceable)."""
  return base_lr * gamma ** jnp.sum(epoch >= milestones)


def settings(ev) -> dict:
  """The keyword arguments of `evaluate_synset` / `evaluate_sequential` that the config's
  `eval` section sets (lr, models and the source aside)."""
  return dict(epochs=ev.epochs, batch_size=ev.batch_size, momentum=ev.momentum,
              weight_decay=ev.weight_decay, dsa_strategy=ev.dsa_strategy,
              num_nets=ev.num_nets, seed=ev.seed, chunk_epochs=ev.chunk_epochs,
              protocol=ev.protocol)


def _chunk_length(epochs: int, limit: int = 100) -> int:
  """Largest divisor of `epochs` up to `limit`: equal chunks, one compilation."""
  return max(d for d in range(1, min(epochs, limit) + 1) if epochs % d == 0)


@dataclasses.dataclass(frozen=True)
class Teacher:
  """Knowledge-distillation evaluation: the student nets learn the softened outputs
  (temperature T) of this net, trained on the real data, instead of the labels."""
  model: object              # a flax module (hashable)
  variables: object          # its variables ({"params": ...[, "batch_stats": ...]})
  temperature: float = 4.0


def _compiled(model, momentum: float, weight_decay: float, batch_size: int,
              dsa_strategy: str, chunk: int, nets=None, teacher: Teacher | None = None,
              protocol: str = "mtt"):
  """Jitted init / chunk-of-epochs / accuracy functions, built once per setting so that
  repeated evaluations (every K distillation steps) reuse their compilations. `nets`:
  the sharding of the nets' leading axis over devices (sharding.nets_sharding), or
  None on one device. With a `teacher`, the chunk takes its variables as an argument."""
  kd = None if teacher is None else (teacher.model, teacher.temperature)
  return _compiled_once(model, momentum, weight_decay, batch_size, dsa_strategy, chunk,
                        nets, kd, RECIPES[protocol])


@functools.lru_cache(maxsize=32)
def _compiled_once(model, momentum, weight_decay, batch_size, dsa_strategy, chunk, nets,
                   kd, recipe: Recipe):
  tx = training.direction("sgd", momentum, weight_decay)
  teacher, temperature = kd if kd is not None else (None, 1.0)
  epoch_fn = jax.vmap(training.make_train_epoch(model, tx, batch_size, dsa_strategy,
                                                teacher=teacher, temperature=temperature,
                                                dsa_mode=recipe.dsa_mode,
                                                cutmix_prob=recipe.cutmix_prob),
                      in_axes=(0, None, None, None, 0, None, None))

  def placed(states):   # each device trains its own nets
    return states if nets is None else jax.lax.with_sharding_constraint(states, nets)

  @jax.jit
  def init(keys, sample):
    return placed(jax.vmap(lambda k: training.init_state(model, k, sample, tx))(keys))

  @jax.jit
  def reset_optimizer(states):   # a new stage starts a new SGD (momentum buffers zero)
    return placed(states.replace(opt_state=jax.vmap(tx.init)(states.params)))

  @jax.jit
  def run_chunk(states, first_epoch, milestones, base_lr, images, labels, net_keys,
                teacher_variables=None):
    def body(states, e):
      lr_e = epoch_lr(base_lr, e, milestones, recipe.gamma)
      if recipe.fresh_optimizer:   # a new torch.optim.SGD at each milestone
        fresh = jnp.any(e == milestones)
        states = states.replace(opt_state=jax.tree.map(
            lambda old, new: jnp.where(fresh, new, old), states.opt_state,
            jax.vmap(tx.init)(states.params)))
      keys = jax.vmap(lambda k: jax.random.fold_in(k, e))(net_keys)
      states, loss, acc = epoch_fn(states, lr_e, images, labels, keys, 1.0,
                                   teacher_variables)
      return placed(states), (loss, acc)
    return jax.lax.scan(body, placed(states), first_epoch + jnp.arange(chunk))

  # One net at a time (lax.map, not vmap): test-set activations of all nets at once
  # would take gigabytes for no speed gain on CPU.
  net_accuracy = training.make_accuracy(model, chunk=500)

  @jax.jit
  def accuracy(params, batch_stats, images, labels):
    return jax.lax.map(lambda ps: net_accuracy(ps[0], ps[1], images, labels),
                       (params, batch_stats))

  return init, reset_optimizer, run_chunk, accuracy


def eval_programs(images, labels, test_images, test_labels, *, num_classes: int,
                  arch: str = "ConvNet", model_config=None, epochs: int = 1000,
                  batch_size: int = 256, momentum: float = 0.9, weight_decay: float = 5e-4,
                  dsa_strategy: str = augment.DEFAULT_STRATEGY, num_nets: int = 5,
                  chunk_epochs: int = 0, protocol: str = "mtt") -> list:
  """The compiled programs `evaluate_synset` would run on sets of these shapes (arrays
  or jax.ShapeDtypeStruct), without running them: a chunk of training epochs and the
  test-set accuracy. Their `memory_analysis()` is what an evaluation needs per device
  (dd_jax.plan)."""
  model = (models.from_config(model_config, num_classes, arch=arch, field="eval.models")
           if model_config is not None else models.build(arch, num_classes, "eval.models"))
  chunk = _chunk_length(stage_epochs(protocol, epochs), chunk_epochs or 100)
  nets = sharding.nets_sharding(num_nets)
  init, _, run_chunk, _ = _compiled(model, momentum, weight_decay, batch_size,
                                    dsa_strategy, chunk, nets, protocol=protocol)
  accuracy = _compiled(model, momentum, weight_decay, batch_size, dsa_strategy, chunk)[3]
  keys = jax.random.split(jax.random.PRNGKey(0), num_nets)
  sample = jax.ShapeDtypeStruct((1,) + tuple(images.shape[1:]), jnp.float32)
  states = jax.eval_shape(init, keys, sample)
  if nets is not None:
    states, keys = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=nets), (states, keys))

  def like(x, dtype=None):
    return jax.ShapeDtypeStruct(x.shape, dtype or x.dtype)

  scalar = jax.ShapeDtypeStruct((), jnp.int32)
  milestones = jax.ShapeDtypeStruct(lr_milestones(protocol, epochs).shape, jnp.int32)
  train = run_chunk.lower(states, scalar, milestones, jax.ShapeDtypeStruct((), jnp.float32),
                          like(images, jnp.float32), like(labels), keys).compile()
  test = accuracy.lower(states.params, states.batch_stats, like(test_images, jnp.float32),
                        like(test_labels, jnp.int32)).compile()
  return [train, test]


def evaluate_synset(images, labels, test_images, test_labels, *, num_classes: int,
                    arch: str = "ConvNet", model_config=None, lr: float = 0.01,
                    epochs: int = 1000, batch_size: int = 256, momentum: float = 0.9,
                    weight_decay: float = 5e-4,
                    dsa_strategy: str = augment.DEFAULT_STRATEGY, num_nets: int = 5,
                    seed: int = 0, chunk_epochs: int = 0,
                    teacher: Teacher | None = None, protocol: str = "mtt") -> EvalResult:
  """Trains `num_nets` fresh `arch` nets on (images, labels); test accuracy of each.

  Args:
    images: [N, H, W, C] float, preprocessed as the test images are.
    labels: [N] int (hard) or [N, num_classes] float logits (soft).
    test_images, test_labels: the held-out set.
    num_classes: classifier width.
    arch: a name in `models.ARCHITECTURES`; model_config supplies its fields.
    lr: learning rate (the learned one for distilled sets).
    epochs: training epochs as the official `epoch_eval_train` counts them (protocol
      "mtt" trains epochs + 1, lr x0.1 after epoch epochs // 2 + 1).
    chunk_epochs: at most this many epochs per compiled call (0: 100); the chunk is
      the largest divisor of the trained epochs within it, so every call reuses one
      compilation.
    teacher: knowledge distillation: the nets learn the teacher's softened outputs on
      each augmented batch (`labels` then only count the training accuracy).
    protocol: "mtt" (the official MTT/DC family's), "legacy" (dd_jax's before it
      matched) or "idc" (IDC's schedule, CutMix and DSA).
  Returns:
    An `EvalResult` with one accuracy per net.
  """
  return evaluate_sequential(
      [(images, labels, lr)], test_images, test_labels, num_classes=num_classes, arch=arch,
      model_config=model_config, epochs=epochs, batch_size=batch_size, momentum=momentum,
      weight_decay=weight_decay, dsa_strategy=dsa_strategy, num_nets=num_nets, seed=seed,
      chunk_epochs=chunk_epochs, teacher=teacher, protocol=protocol)


def evaluate_sequential(stages, test_images, test_labels, *, num_classes: int,
                        arch: str = "ConvNet", model_config=None, epochs: int = 1000,
                        batch_size: int = 256, momentum: float = 0.9,
                        weight_decay: float = 5e-4,
                        dsa_strategy: str = augment.DEFAULT_STRATEGY, num_nets: int = 5,
                        seed: int = 0, chunk_epochs: int = 0,
                        teacher: Teacher | None = None,
                        protocol: str = "mtt") -> EvalResult:
  """SeqMatch's sequential evaluation: the same nets train on each stage in turn
  (`train_sequential`); `stages` is a list of (images, labels, lr), for SeqMatch the
  growing unions S1, S1+S2, ... with each subset's learned lr. The reported accuracy
  is the one after the last stage; `stage_means` has the mean after each. One stage
  is exactly `evaluate_synset`."""
  start = time.perf_counter()
  model = (models.from_config(model_config, num_classes, arch=arch, field="eval.models")
           if model_config is not None else models.build(arch, num_classes, "eval.models"))
  init_keys, net_keys = jax.random.split(jax.random.PRNGKey(seed))
  init_keys = jax.random.split(init_keys, num_nets)   # one init per net
  net_keys = jax.random.split(net_keys, num_nets)     # one epoch-key stream per net
  test_images = jnp.asarray(test_images, jnp.float32)
  test_labels = jnp.asarray(test_labels, jnp.int32)
  accuracy = _compiled(model, momentum, weight_decay, batch_size, dsa_strategy,
                       _chunk_length(stage_epochs(protocol, epochs), chunk_epochs or 100))[3]
  accs, means = [], []

  def after_stage(states):
    accs.append(np.asarray(accuracy(states.params, states.batch_stats, test_images,
                                    test_labels)))
    means.append(float(np.mean(accs[-1])))

  _, losses = train_sequential(model, stages, init_keys, net_keys, epochs=epochs,
                               batch_size=batch_size, momentum=momentum,
                               weight_decay=weight_decay, dsa_strategy=dsa_strategy,
                               chunk_epochs=chunk_epochs, after_stage=after_stage,
                               name=f"eval {arch}" + (" (KD)" if teacher else ""),
                               teacher=teacher, protocol=protocol)
  return EvalResult(arch=arch, accuracies=accs[-1], train_loss=np.asarray(losses),
                    epochs=epochs, seconds=time.perf_counter() - start,
                    stage_means=tuple(means))


def evaluate_architecture(images, labels, test_images, test_labels, *, lr, stages=None,
                          log_prefix: str = "", **settings
                          ) -> tuple[EvalResult, EvalResult | None]:
  """One architecture's protocol on the set (logged) and, with several SeqMatch
  `stages` (images, labels, lr), the sequential one: (result, sequential or None)."""
  result = evaluate_synset(images, labels, test_images, test_labels, lr=lr, **settings)
  logging.info("%s%s", log_prefix, result.summary())
  sequential = None
  if stages and len(stages) > 1:
    sequential = evaluate_sequential(stages, test_images, test_labels, **settings)
    logging.info("%ssequential %s", log_prefix, sequential.summary())
  return result, sequential


def evaluate_with_config(config, prepared, images, labels, *, arch: str, lr: float,
                         stages=None, log_prefix: str = ""
                         ) -> tuple[EvalResult, EvalResult | None]:
  """`evaluate_architecture` on `prepared`'s test split with the config's net (`model`)
  and protocol (`eval`): what the distiller's evaluations, the baselines and
  `python -m dd_jax.evaluate` each run per architecture."""
  return evaluate_architecture(images, labels, prepared.x_test, prepared.y_test, lr=lr,
                               stages=stages, log_prefix=log_prefix,
                               **config_settings(config, prepared, arch))


def config_settings(config, prepared, arch: str) -> dict:
  """`evaluate_synset`'s keyword arguments for `arch` from the config and the data."""
  return dict(num_classes=prepared.num_classes, arch=arch, model_config=config.model,
              **settings(config.eval))


def record(result: EvalResult, sequential: EvalResult | None = None) -> dict:
  """An architecture's JSON record (distill/evals.json, eval_results.json)."""
  out = {"mean": result.mean, "std": result.std, "accuracies": result.accuracies.tolist(),
         "seconds": round(result.seconds, 3)}
  if sequential is not None:
    out["sequential"] = {"mean": sequential.mean, "std": sequential.std,
                         "accuracies": sequential.accuracies.tolist(),
                         "stage_means": list(sequential.stage_means),
                         "seconds": round(sequential.seconds, 3)}
  return out


def _replicated(nets):
  """Where the inputs every net reads go: all the nets' devices, or the default one."""
  if nets is None:
    return None
  return jax.sharding.NamedSharding(nets.mesh, jax.sharding.PartitionSpec())


def train_sequential(model, stages, init_keys, net_keys, *, epochs: int, batch_size: int,
                     momentum: float, weight_decay: float, dsa_strategy: str,
                     chunk_epochs: int = 0, after_stage=None, name: str = "train",
                     teacher: Teacher | None = None, protocol: str = "mtt"):
  """Trains len(init_keys) nets (vmapped) on each (images, labels, lr) of `stages` in
  turn: `stage_epochs(protocol, epochs)` epochs per stage at its lr (decayed within the
  stage as `protocol` says: "mtt" x0.1 after epoch epochs // 2 + 1), a fresh
  SGD state per stage (as the official code's new optimiser), weights and batch
  statistics carried over. Epoch keys count on across stages. `after_stage(states)`
  is called after each stage. Returns (states, the last epoch's [nets] losses)."""
  start = time.perf_counter()
  per_stage = stage_epochs(protocol, epochs)
  chunk = _chunk_length(per_stage, chunk_epochs or 100)
  nets = sharding.nets_sharding(len(init_keys))
  init, reset_optimizer, run_chunk, _ = _compiled(model, momentum, weight_decay,
                                                  batch_size, dsa_strategy, chunk, nets,
                                                  teacher, protocol)
  everywhere = _replicated(nets)
  teacher_variables = (None if teacher is None else
                       jax.device_put(teacher.variables, everywhere))
  if nets is not None:
    init_keys, net_keys = jax.device_put((init_keys, net_keys), nets)
  states = init(init_keys, jax.device_put(np.asarray(stages[0][0][:1], np.float32),
                                          everywhere))
  total = per_stage * len(stages)
  losses = None
  for k, (images, labels, lr) in enumerate(stages):
    images = jax.device_put(np.asarray(images, np.float32), everywhere)
    labels = jax.device_put(np.asarray(labels), everywhere)
    offset = k * per_stage
    if k:
      states = reset_optimizer(states)
    for first in range(offset, offset + per_stage, chunk):
      states, (losses, _) = run_chunk(states, jnp.int32(first),
                                      lr_milestones(protocol, epochs, offset),
                                      jnp.float32(lr),
                                      images, labels, net_keys, teacher_variables)
      done = first + chunk
      loss = float(jnp.mean(losses[-1]))   # waits for the chunk: time it after this
      elapsed = time.perf_counter() - start
      logging.log_every_n_seconds(
          logging.INFO, "%s: epoch %d/%d, loss %.4f, %.0fs, ETA %.0fs", 10, name,
          done, total, loss, elapsed, elapsed / done * (total - done))
    if after_stage is not None:
      after_stage(states)
  return states, losses[-1]
