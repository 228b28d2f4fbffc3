"""The outer loop of one distillation run, whatever the method: resume, step,
evaluation every `distill.eval_every` steps, clu metrics, Orbax checkpoints, progress
with ETA, export, summary.

The method (`distill.method`) and the parameterisation (`distill.parameterization`)
come from the registries in distill/methods/; the loop names neither. A staged run
(SeqMatch, H-PD) hands the loop its `Stage` (distill/stage.py).

Workdir layout:
  experts/                 expert trajectories (unless expert.dir points elsewhere)
  distill/run.json         what this run is (distill/workdir.py); another config is refused
  distill/ckpt/<step>/     Orbax checkpoints of the DistillState; a restarted run resumes
  distill/evals.json       every evaluation so far
  synset.{npz,json,png}    the synthetic set, written at every evaluation and at the end
  events.out.tfevents.*    TensorBoard scalars and image grids (clu)
"""
from __future__ import annotations

import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dd_jax import disk, distributed, faults, losses, memory, models, progress, summaries
from dd_jax.data import pipeline
from dd_jax.distill import estimate, export
from dd_jax.distill import state as state_lib
from dd_jax.distill import workdir as workdir_lib
from dd_jax.distill.methods import METHODS, PARAMETERIZATIONS, base
from dd_jax.distill.stage import Single, Stage
from dd_jax.distill.validation import validate_against_data, validate_run
from dd_jax.errors import ConfigError
from dd_jax.evaluate import baselines, protocol
from dd_jax.experts import store
from dd_jax.metadata import write_json_atomic
from dd_jax.models.torch_layout import TorchLayout


class Distiller:
  """One run of the loop; `run()` resumes from the latest checkpoint."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str,
               prepared: pipeline.Prepared | None = None, stage: Stage | None = None,
               plan_only: bool = False):
    """`stage`: where this run sits in a staged run (a SeqMatch subset, an H-PD space);
    None for a run on its own. `plan_only`: build what `memory_plan` needs (shapes,
    the compiled step), no experts, no prior training; such a Distiller cannot run."""
    validate_run(config)
    self.config, self.workdir, self.plan_only = config, workdir, plan_only
    self.prepared = prepared or pipeline.prepare(config.data)
    validate_against_data(config, self.prepared)
    self.stage = stage or Single(os.path.join(workdir, "distill"))
    self.run_dir = self.stage.run_dir
    self.identity = workdir_lib.run_identity(config, self.prepared)
    workdir_lib.check_workdir(self.run_dir, self.identity)  # before any compute
    self.ctx = self._context()
    d = config.distill
    if not plan_only:
      self._check_disk()
      estimate.log_plan(config, self.ctx, METHODS[d.method])   # before experts, a prior
    self.param = PARAMETERIZATIONS[d.parameterization](self.ctx)
    self.method = METHODS[d.method](self.ctx, self.param)
    self.final_state = None
    self.evals_path = os.path.join(self.run_dir, "evals.json")
    self.exported, self.exported_step = None, None
    self.eval_seconds = 0.0   # kept out of the steps/s and ETA figures
    self.baselines = None     # the initial set's and a random subset's accuracy, at the end
    self.evals = (store.read_json(self.evals_path) if os.path.exists(self.evals_path)
                  else [])

  def _context(self) -> base.RunContext:
    """The net, its parameter shapes and PAD's mask (an argument of the step, never a
    closed-over constant; "loss" masks are built inside the step)."""
    config, d, p = self.config, self.config.distill, self.prepared
    model = models.from_config(config.model, p.num_classes)
    variables = model.init(jax.random.PRNGKey(0), jnp.asarray(p.x_train[:1]), train=False)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                            variables["params"])
    layout = TorchLayout.of(model, p.x_train.shape[1:])
    mask = (losses.make_mask(layout.positions(), d.param_mask, d.param_mask_ratio)
            if d.param_mask != "loss" else None)
    if mask is not None:
      kept = sum(int(m.sum()) for m in jax.tree.leaves(mask))
      logging.info("parameter mask %s %.2f: %d of %d parameters matched", d.param_mask,
                   d.param_mask_ratio, kept, layout.num_params)
    return base.RunContext(config, self.workdir, p, model, abstract,
                           variables.get("batch_stats", {}), mask, self.stage,
                           self.plan_only)

  @property
  def mask(self):
    return self.ctx.mask

  @property
  def abstract(self):
    return self.ctx.abstract

  def _check_disk(self) -> None:
    """Refuses a workdir this process cannot write to, or whose disk cannot hold the
    run's experts, checkpoints and exports: before any expert, prior or step."""
    d = self.config.distill
    disk.check_writable(self.workdir)
    images = base.images_bytes(self.ctx)
    method = METHODS[d.method]
    needs = {"checkpoints": (d.keep_checkpoints + 1) * images,
             "exports": 3 * images * method.images_per_stored(self.config),
             **method.disk_needs(self.ctx)}
    disk.check_space(self.workdir, needs, "--workdir",
                     "free space, choose a --workdir on a larger disk, or lower "
                     "expert.num_experts / distill.keep_checkpoints")

  def memory_plan(self) -> memory.MemoryPlan:
    """The run's memory per device (dd_jax.memory), nothing executed."""
    plan = self.method.memory_plan(self.state_like)
    if plan is None:
      raise ConfigError("distill.method", f"the memory plan covers trajectory matching, "
                        f"not {self.config.distill.method}",
                        "use distill.method='mtt', or plan by a short run")
    return plan

  def initial_set(self, d) -> tuple[np.ndarray, np.ndarray]:
    """The method's images and labels before step 0 for the `distill` section `d`."""
    return self.method.initial_set(d)

  def initial_state(self) -> state_lib.DistillState:
    d, seed = self.config.distill, self.config.seed
    if self.stage.initial is not None:   # a SeqMatch subset's slice, an H-PD layer's latents
      images, labels = self.stage.initial(self)
    else:
      images, labels = self.param.initial(self.method)
    state = state_lib.create(d, images, labels, seed, self.param.latent_tx)
    if self.stage.rng_index is not None:
      state = state.replace(rng=jax.random.fold_in(state.rng, 1000 + self.stage.rng_index))
    return state

  def state_like(self) -> state_lib.DistillState:
    """A state of the run's structure (zeros): the restore target of a checkpoint."""
    d, p, n = self.config.distill, self.prepared, self.ctx.set_size
    labels = (np.zeros((n, p.num_classes), np.float32) if d.soft_labels
              else np.zeros((n,), np.int32))
    images = self.param.images_like(n, p.x_train.shape[1:])
    return state_lib.create(d, images, labels, self.config.seed, self.param.latent_tx)

  def syn_lr(self, state) -> float:
    return float(state_lib.param_to_lr(state.lr_param, self.config.distill.syn_lr_param))

  def synset(self, state) -> tuple[np.ndarray, np.ndarray]:
    """The set a net trains on so far: rendered, decoded, with SeqMatch's frozen subsets
    first."""
    images = self.param.render(state.images)
    parts = self.stage.parts(images, np.asarray(state.labels))
    decoded = [self.method.decode(self.config, x, y) for x, y in parts]
    return (np.concatenate([x for x, _ in decoded]),
            np.concatenate([y for _, y in decoded]))

  def evaluate(self, state, writer) -> dict:
    """The evaluation protocol on the current set (with SeqMatch also the sequential
    one over the subsets); logs, records and exports it."""
    ev, p = self.config.eval, self.prepared
    started = time.perf_counter()
    step, lr = int(state.step), self.syn_lr(state)
    images, labels = self.synset(state)
    record = {"step": step, "global_step": self.stage.step_offset + step, "lr": lr}
    stages = None
    if self.stage.sequential:
      stages = [(*self.method.decode(self.config, x, y), r)
                for x, y, r in self.stage.sequence(state.images, state.labels, lr)]
    for arch in ev.models:
      progress.doing(f"{self.stage.label}evaluating step {step}: {ev.num_nets} {arch} "
                     f"nets x {ev.epochs} epochs")
      result, seq = protocol.evaluate_with_config(
          self.config, p, images, labels, arch=arch, lr=lr, stages=stages,
          log_prefix=f"{self.stage.label}step {step} eval ")
      record[arch] = protocol.record(result, seq)
      faults.point("distill.evaluate")
      scalars = {f"eval/{arch}/accuracy": result.mean, f"eval/{arch}/std": result.std}
      if seq is not None:
        scalars[f"eval/{arch}/sequential"] = seq.mean
      writer.write_scalars(self.stage.step_offset + step, scalars)
    self.evals = [e for e in self.evals if e["step"] != step] + [record]
    if distributed.is_primary():
      write_json_atomic(self.evals_path, self.evals)
    self.export(state, writer)
    self.eval_seconds += time.perf_counter() - started
    return record

  def export(self, state, writer) -> dict[str, str]:
    p = self.prepared
    prefix = os.path.join(self.workdir, "synset")
    meta = {"step": int(state.step), "data": p.describe(),
            "config": self.identity["config"],
            "evals": self.evals[-1:] if self.evals else [],
            **self.stage.export_meta(self.syn_lr(state),
                                     self.method.images_per_stored(self.config))}
    images, labels = self.synset(state)
    pixels = p.pre.invert(images)
    if not distributed.is_primary():   # process 0 writes; the others know the names
      self.exported, self.exported_step = export.synset_paths(prefix), int(state.step)
      return self.exported
    paths = export.save_synset(prefix, images, labels,
                               self.syn_lr(state), p.pre, p.num_classes, meta, pixels)
    self.param.export_extra(self.workdir, state.images)
    grid = export.class_grid(pixels, labels, p.num_classes)
    writer.write_images(self.stage.step_offset + int(state.step), {"synthetic": grid[None]})
    self.exported, self.exported_step = paths, int(state.step)
    return paths

  def run(self) -> str:
    """Resumes (or starts), steps to distill.iterations, evaluates, exports; a summary."""
    manager, state = self._start()
    self.current_state = state   # what an interruption saves
    writer = summaries.create_writer(self.workdir)
    d = self.config.distill
    writer.write_hparams({k: v for k, v in d.items() if isinstance(v, (int, float, str))})
    try:
      state = self._steps(state, manager, writer)
      if d.eval_every and not self.evaluated(int(state.step)):
        self.evaluate(state, writer)
      if d.eval_every and self.config.eval.baselines and not self.stage.label:
        step0 = next((e for e in self.evals if e["step"] == 0), {})
        self.baselines = baselines.for_run(
            self.config, self.prepared, self.run_dir,
            lambda: self.synset(self.initial_state()), d.lr_teacher,
            at_step0=step0.get(self.config.eval.models[0]))
      workdir_lib.save(manager, state)
      paths = self.exported if self.exported_step == int(state.step) else self.export(
          state, writer)
      self.final_state = state
    except KeyboardInterrupt:
      state = self.current_state
      logging.warning("interrupted: saving step %d so the run can resume", int(state.step))
      workdir_lib.save(manager, state)
      raise
    finally:
      manager.wait_until_finished()
      manager.close()
      writer.flush()
      self.method.close()
    return self._summary(state, paths)

  def _start(self):
    """(checkpoint manager, state): the latest checkpoint's state, or the initial one.
    A new run builds its initial set and checks its memory plan first: the data or the
    plan may refuse it, which must leave the workdir free for a corrected config."""
    d = self.config.distill
    recorded = os.path.exists(os.path.join(self.run_dir, "run.json"))
    state = None if recorded else self.initial_state()
    if d.memory_limit_mb >= 0:   # refused before anything is written
      progress.doing("compiling the distillation step (for its memory plan)")
      plan = self.method.memory_plan(self.state_like)
      if plan is not None:
        logging.info("%s", plan.summary())
        memory.check(plan, d)
    workdir_lib.record_workdir(self.run_dir, self.identity, self.config)
    manager = workdir_lib.checkpoint_manager(self.run_dir, d.keep_checkpoints)
    latest = manager.latest_step()
    if latest is not None:
      # Orbax reads the arrays straight to where the step wants them, whatever mesh or
      # number of processes wrote them; the target needs shapes only.
      where = self.method.state_sharding
      target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=where),
                            self.state_like())
      state = workdir_lib.restore(manager, latest, target, self.run_dir)
      logging.info("resuming distillation from step %d", latest)
    elif state is None:
      state = self.initial_state()
    state = self.method.put(state)
    if latest is None:
      faults.point("distill.start")
    return manager, state

  def _steps(self, state, manager, writer):
    """The outer steps from the state's to distill.iterations, with evaluations,
    progress lines and checkpoints when due."""
    d = self.config.distill
    start_step, bad = int(state.step), 0
    clock = _Clock(start_step)
    self.eval_seconds = 0.0
    if start_step == 0:
      self.stage.after_step(self, state, 0)   # H-PD scores a space's start too
    for step in range(start_step, d.iterations):
      if d.eval_every and step % d.eval_every == 0 and not self.evaluated(step):
        self.evaluate(state, writer)
      self._announce(step, start_step, clock)
      state, metrics, where = self.method.step(state, step)
      self.current_state = state
      bad = self._check_step(step, metrics, where, bad, manager, state)
      done = step + 1
      self.stage.after_step(self, state, done, metrics)
      if clock.due(done, d):
        self._log(writer, done, metrics, where, clock)
      if done % d.checkpoint_every == 0:
        workdir_lib.save(manager, state)
    return state

  def _announce(self, step: int, start_step: int, clock: "_Clock") -> None:
    """Tells the heartbeat (dd_jax.progress) which step runs, and for how long."""
    label, total = self.stage.label, self.config.distill.iterations
    if step == start_step:
      progress.doing(f"{label}step {step + 1}/{total} (compiling the distillation step "
                     "first)")
      return
    rate = max(clock.rate(step, self.eval_seconds), 1e-9)
    progress.doing(f"{label}step {step + 1}/{total}", 1 / rate, (total - step - 1) / rate)

  def _check_step(self, step: int, metrics, where: str, bad: int, manager, state) -> int:
    """Logs a rolled-back, skipped or clamped step; the count of non-finite steps in a
    row, stopping the run (checkpoint kept) when it reaches distill.max_bad_steps."""
    d = self.config.distill
    if metrics.get("skipped"):
      logging.info("step %d: loss %.4f > distill.loss_threshold=%g, update skipped "
                   "(%s)", step, metrics["loss"], d.loss_threshold, where)
    if metrics.get("lr_clamped"):
      logging.warning("step %d: the student lr reached distill.min_syn_lr=%g and was "
                      "held there", step, d.min_syn_lr)
    if metrics["finite"]:
      return 0
    logging.warning("step %d: matching loss, gradients or update not finite (%s): "
                    "step rolled back; updates now scaled by %.3g "
                    "(distill.nonfinite_lr_factor=%g)", step, where,
                    metrics["update_scale"], d.nonfinite_lr_factor)
    if bad + 1 >= d.max_bad_steps:
      workdir_lib.save(manager, state)
      raise ConfigError(
          "distill.lr_img", f"{bad + 1} consecutive steps had a non-finite loss or "
          f"gradient (last good synthetic set kept, checkpoint at step {step + 1})",
          "lower distill.lr_img or distill.lr_lr, or check the experts")
    return bad + 1

  def evaluated(self, step: int) -> bool:
    return any(e["step"] == step for e in self.evals)

  def _log(self, writer, done: int, metrics, where: str, clock: "_Clock") -> None:
    d = self.config.distill
    writer.write_scalars(self.stage.step_offset + done,
                         {f"distill/{k}": float(v) for k, v in metrics.items()})
    rate = clock.rate(done, self.eval_seconds)
    inner = (f", inner CE {metrics['inner_loss_first']:.3f} -> "
             f"{metrics['inner_loss_last']:.3f}" if "inner_loss_first" in metrics else "")
    logging.info(self.stage.label + "step %d/%d: loss %.4f, syn_lr %.5f%s (%s), %.2f "
                 "steps/s, ETA %.0fs", done, d.iterations, metrics["loss"],
                 metrics.get("syn_lr", d.lr_teacher), inner, where, rate,
                 (d.iterations - done) / max(rate, 1e-9))
    progress.logged()

  def _summary(self, state, paths) -> str:
    lines = [f"{self.stage.label}distilled {int(state.step)} steps; student lr "
             f"{self.syn_lr(state):.5f}",
             f"synthetic set: {paths['npz']} (+ .json, .png)"]
    last = self.evals[-1] if self.evals else {}
    for arch in self.config.eval.models:
      if arch in last:
        lines.append(f"{arch} at step {last['step']}: {100 * last[arch]['mean']:.2f} +- "
                     f"{100 * last[arch]['std']:.2f}%")
        if arch == self.config.eval.models[0] and self.baselines:
          line, better = baselines.compare(last[arch]["mean"], self.baselines)
          lines.append(line)
          if not better:
            lines.append("warning: the distilled set is no better than a baseline: more "
                         "steps or other settings are needed (docs/methods.md)")
            logging.warning("%s", lines[-1])
        seq = last[arch].get("sequential")
        if seq:
          lines.append(f"{arch} sequential (S1, S1+S2, ...): {100 * seq['mean']:.2f} +- "
                       f"{100 * seq['std']:.2f}%")
    return "\n".join(lines)


# A progress line at least this often, whatever distill.log_every says (a step longer
# than this is covered by dd_jax.progress's heartbeat).
LOG_AT_LEAST_EVERY_S = 30.0


class _Clock:
  """When a progress line is due, and the steps/s since the run (re)started, without
  the time spent evaluating."""

  def __init__(self, start_step: int):
    self.start_step, self.start = start_step, time.perf_counter()
    self.last_log = self.start

  def due(self, done: int, d) -> bool:
    now = time.perf_counter()
    if (done % d.log_every == 0 or done == d.iterations
        or now - self.last_log >= LOG_AT_LEAST_EVERY_S):
      self.last_log = now
      return True
    return False

  def rate(self, done: int, eval_seconds: float) -> float:
    elapsed = time.perf_counter() - self.start - eval_seconds
    return (done - self.start_step) / max(elapsed, 1e-9)
