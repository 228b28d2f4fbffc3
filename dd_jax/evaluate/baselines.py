"""What a distilled set's accuracy is worth next to: the run's initial set, and a random
real subset of the same size under the same protocol.

The random subset's figure depends only on the data, the ipc, the net and the protocol:
it is computed once and kept in a cache folder (DD_JAX_BASELINES, default
~/.cache/dd_jax/baselines), so every run of a setting after the first reads it. The
initial set's is kept with its run (distill/baselines.json), so a resumed run reads it.
"""
from __future__ import annotations

import hashlib
import json
import os

from absl import logging
import ml_collections

from dd_jax.data import indexing, pipeline
from dd_jax.evaluate import protocol
from dd_jax.metadata import read_json_if_sound, write_json_atomic

CACHE_ENV = "DD_JAX_BASELINES"
CACHE_DEFAULT = os.path.join("~", ".cache", "dd_jax", "baselines")


def cache_folder() -> str:
  return os.path.expanduser(os.environ.get(CACHE_ENV, CACHE_DEFAULT))


def _evaluate(config, prepared, images, labels, lr: float, arch: str, what: str) -> dict:
  result, _ = protocol.evaluate_with_config(config, prepared, images, labels, arch=arch,
                                            lr=lr, log_prefix=f"baseline ({what}) ")
  return {"mean": result.mean, "std": result.std, "nets": len(result.accuracies)}


def _cache_entry(config, prepared, ipc: int, arch: str) -> tuple[dict, str]:
  """The random subset's cache key and the path of its entry."""
  key = {"data": prepared.describe(), "ipc": ipc, "arch": arch, "seed": config.eval.seed,
         "lr": config.eval.lr, "model": config.model.to_dict(),
         "protocol": protocol.settings(config.eval)}
  digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
  return key, os.path.join(cache_folder(), f"{digest[:24]}.json")


def random_subset(config: ml_collections.ConfigDict, prepared: pipeline.Prepared, ipc: int,
                  arch: str) -> dict:
  """{mean, std, nets} of `ipc` random real images per class (seed eval.seed, lr
  eval.lr), read from the cache when this setting was evaluated before."""
  key, path = _cache_entry(config, prepared, ipc, arch)
  cached = read_json_if_sound(path)   # a damaged entry is computed again
  if isinstance(cached, dict) and "result" in cached:
    return cached["result"]
  idx = indexing.sample_per_class(prepared.y_train, prepared.num_classes, ipc,
                                  seed=config.eval.seed, field="distill.ipc")
  result = _evaluate(config, prepared, prepared.x_train[idx], prepared.y_train[idx],
                     config.eval.lr, arch, f"{ipc} random real images per class")
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json_atomic(path, {"key": key, "result": result})
  except OSError as e:   # a read-only home: the figure is still reported
    logging.warning("baseline not cached (%s)", e)
  return result


def pending(config: ml_collections.ConfigDict, prepared: pipeline.Prepared,
            run_dir: str, step0_evaluated: bool) -> int:
  """How many baseline evaluations the end of this run still has to train (0, 1 or 2):
  the initial set's unless <run_dir>/baselines.json has it or the run evaluates step 0
  (`step0_evaluated`, done or due), the random subset's unless cached (the run's plan
  prices them)."""
  arch = config.eval.models[0]
  found = read_json_if_sound(os.path.join(run_dir, "baselines.json")) or {}
  cached = read_json_if_sound(_cache_entry(config, prepared, config.distill.ipc, arch)[1])
  return (int(not step0_evaluated and (found.get("arch") != arch or "initial" not in found))
          + int(not (isinstance(cached, dict) and "result" in cached)))


def for_run(config: ml_collections.ConfigDict, prepared: pipeline.Prepared, run_dir: str,
            initial_set, initial_lr: float, at_step0: dict | None = None) -> dict:
  """{"initial": ..., "random_real": ...} for the run's first architecture, kept in
  <run_dir>/baselines.json. The initial set's figure is the run's own evaluation at step
  0 when it made one (`at_step0`: that evaluation's record of the first architecture: the
  same set, lr and protocol), else the initial set (images, labels as the nets see them,
  or a callable giving them) is evaluated once at `initial_lr`."""
  arch = config.eval.models[0]
  path = os.path.join(run_dir, "baselines.json")
  found = read_json_if_sound(path) or {}
  if (found.get("arch") != arch or "initial" not in found) and at_step0 is not None:
    found = {"arch": arch, "initial": {"mean": at_step0["mean"], "std": at_step0["std"],
                                       "nets": len(at_step0["accuracies"])}}
  if found.get("arch") != arch or "initial" not in found:
    images, labels = initial_set() if callable(initial_set) else initial_set
    found = {"arch": arch, "initial": _evaluate(config, prepared, images, labels,
                                                initial_lr, arch, "the initial set")}
    write_json_atomic(path, found)
  found["random_real"] = random_subset(config, prepared, config.distill.ipc, arch)
  write_json_atomic(path, found)   # for the report
  return found


def compare(final_mean: float, baselines: dict) -> tuple[str, bool]:
  """A line putting the baselines beside the final accuracy, and whether the distilled
  set beats both."""
  line = (f"baselines ({baselines['arch']}): initial set "
          f"{100 * baselines['initial']['mean']:.2f}%, random real subset "
          f"{100 * baselines['random_real']['mean']:.2f}%")
  best = max(baselines["initial"]["mean"], baselines["random_real"]["mean"])
  return line, bool(final_mean > best)
