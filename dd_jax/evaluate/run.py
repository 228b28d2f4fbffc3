"""Config-driven evaluation: a random real subset or a stored synthetic set, every
architecture in `eval.models`, results written to <workdir>/eval_results.json.

Each finished architecture is recorded in <workdir>/eval_progress.json under a key of
the images, labels, lr and every eval/model/data setting (not the list of models), so
an interrupted evaluation resumes at the next architecture; the record goes once
eval_results.json is written.
"""
from __future__ import annotations

import hashlib
import json
import os

from absl import logging
import ml_collections
import numpy as np

from dd_jax import disk, models
from dd_jax import progress as heartbeat
from dd_jax.data import augment, indexing, pipeline
from dd_jax.errors import ConfigError, require, require_at_least
from dd_jax.evaluate import kd
from dd_jax.evaluate.protocol import (EvalResult, RECIPES, config_settings,
                                      evaluate_synset, evaluate_with_config, record)
from dd_jax.metadata import read_json, read_npz, spec_difference, write_json_atomic

PROGRESS = "eval_progress.json"
SYNSET_FIX = "give a synthetic set dd_jax wrote (<workdir>/synset.npz), or 'random_real'"


def validate(config: ml_collections.ConfigDict) -> None:
  ev = config.eval
  require_at_least(ev, "eval", {"num_nets": 1, "epochs": 1, "batch_size": 1, "ipc": 1})
  require(ev.lr > 0, "eval.lr", f"is {ev.lr}", "use a positive learning rate")
  augment.check_strategy(ev.dsa_strategy, "eval.dsa_strategy")
  require(ev.protocol in RECIPES, "eval.protocol", f"unknown {ev.protocol!r}",
          f"use one of {', '.join(RECIPES)} (idc: IDC's lr steps, CutMix and DSA)")
  require(ev.kd_temperature > 0, "eval.kd_temperature", f"is {ev.kd_temperature}",
          "use a positive temperature (4 is common)")
  for arch in ev.models:
    require(arch in models.ARCHITECTURES, "eval.models", f"unknown architecture {arch!r}",
            f"use names from {', '.join(models.ARCHITECTURES)}")


def load_synset(path: str, prepared: pipeline.Prepared) -> tuple[np.ndarray, np.ndarray, float | None]:
  """Images, labels and learned lr of a stored synthetic set, checked against the data."""
  require(os.path.exists(path), "eval.source", f"{path} does not exist",
          "give the path of a synthetic set .npz or 'random_real'")
  f = read_npz(path, "eval.source", SYNSET_FIX)
  require("images" in f and "labels" in f, "eval.source",
          f"{path} has no 'images'/'labels' arrays", "save the set with both arrays")
  images, labels = f["images"], f["labels"]
  lr = float(f["lr"]) if "lr" in f else None
  meta = json.loads(str(f["meta"])) if "meta" in f else None
  if meta is not None and "data" in meta:
    diff = spec_difference(meta["data"], prepared.describe())
    if diff:
      raise ConfigError("eval.source", f"{path} was distilled from other data: {diff}",
                        "evaluate it with the config it was made with")
  require(images.shape[1:] == prepared.x_train.shape[1:], "eval.source",
          f"images are {images.shape[1:]}, the data is {prepared.x_train.shape[1:]}",
          "evaluate the set with the dataset it was distilled from")
  return images.astype(np.float32), labels, lr


def sequential_stages(path: str, num_classes: int) -> list | None:
  """SeqMatch sets: the stages S1, S1+S2, ... with each subset's learned lr, read from
  the set's metadata (None for other sets). Rows are subset after subset."""
  f = read_npz(path, "eval.source", SYNSET_FIX)
  meta = json.loads(str(f["meta"])) if "meta" in f else {}
  images, labels = f["images"].astype(np.float32), f["labels"]
  seq = meta.get("seqmatch")
  if not seq:
    return None
  ends = np.cumsum(seq["subsets"]) * num_classes
  require(ends[-1] == len(images), "eval.source", f"{path} lists subsets of {ends[-1]} "
          f"images but holds {len(images)}", "evaluate the set as its run exported it")
  return [(images[:end], labels[:end], lr) for end, lr in zip(ends, seq["lrs"])]


def progress_key(config: ml_collections.ConfigDict, prepared: pipeline.Prepared,
                 images: np.ndarray, labels: np.ndarray, lr: float) -> str:
  """What a recorded architecture's result depends on (eval.models left out)."""
  settings = {"eval": {k: v for k, v in config.eval.to_dict().items() if k != "models"},
              "model": config.model.to_dict(), "data": prepared.describe(), "lr": lr}
  h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
  h.update(np.ascontiguousarray(images, np.float32).tobytes())
  h.update(np.ascontiguousarray(labels).tobytes())
  return h.hexdigest()[:24]


def _record(r: EvalResult, sequential: dict | None = None, kd: dict | None = None) -> dict:
  return {**record(r), **({"sequential": sequential} if sequential else {}),
          **({"kd": kd} if kd else {})}


# The config sections evaluation reads (expert: the KD teacher's folder); python -m
# dd_jax.evaluate refuses others.
SECTIONS_READ = ("data", "model", "eval", "expert", "seed", "distributed", "mesh")


def _source_set(ev, prepared: pipeline.Prepared):
  """(images, labels, lr) of eval.source: a random real subset at eval.lr, or a
  synthetic set at its stored lr (eval.lr when it has none)."""
  if ev.source == "random_real":
    idx = indexing.sample_per_class(prepared.y_train, prepared.num_classes, ev.ipc,
                                    seed=ev.seed, field="eval.ipc")
    return prepared.x_train[idx], prepared.y_train[idx], ev.lr
  images, labels, stored_lr = load_synset(ev.source, prepared)
  return images, labels, stored_lr if stored_lr is not None else ev.lr


def evaluate_from_config(config: ml_collections.ConfigDict, workdir: str,
                         prepared: pipeline.Prepared | None = None) -> list[EvalResult]:
  """Runs the protocol for every architecture in `eval.models`."""
  validate(config)
  prepared = prepared or pipeline.prepare(config.data)
  ev = config.eval
  images, labels, lr = _source_set(ev, prepared)
  stages = (sequential_stages(ev.source, prepared.num_classes)
            if ev.source != "random_real" else None)
  key = progress_key(config, prepared, images, labels, lr)
  disk.check_writable(workdir)   # results are written there: know now, not after hours
  progress_path = os.path.join(workdir, PROGRESS)
  progress = read_json(progress_path, "eval", f"delete {progress_path} to evaluate every "
                       "architecture again") if os.path.exists(progress_path) else {}
  done = progress.get("results", {}) if progress.get("key") == key else {}
  teacher = kd.load_teacher(config, workdir, prepared) if ev.kd else None
  results, sequential, distilled = [], {}, {}
  for arch in ev.models:
    if arch in done:   # finished before an interruption
      rec = done[arch]
      results.append(EvalResult(arch, np.asarray(rec["accuracies"]),
                                np.asarray(rec["train_loss"]), ev.epochs, rec["seconds"]))
      if "sequential" in rec:
        sequential[arch] = rec["sequential"]
      if "kd" in rec:
        distilled[arch] = rec["kd"]
      logging.info("%s (recorded in %s)", results[-1].summary(), progress_path)
      continue
    heartbeat.doing(f"evaluating {arch}: {ev.num_nets} nets x {ev.epochs} epochs")
    result, seq = evaluate_with_config(config, prepared, images, labels, arch=arch, lr=lr,
                                       stages=stages)
    results.append(result)
    if seq is not None:   # SeqMatch: also one net trained S1, S1+S2, ...
      sequential[arch] = record(result, seq)["sequential"]
    if teacher is not None:   # the same nets and batches, the teacher's outputs as targets
      with_kd = evaluate_synset(images, labels, prepared.x_test, prepared.y_test, lr=lr,
                                teacher=teacher, **config_settings(config, prepared, arch))
      logging.info("with KD (T=%g): %s", ev.kd_temperature, with_kd.summary())
      distilled[arch] = {**_record(with_kd), "temperature": ev.kd_temperature}
    os.makedirs(workdir, exist_ok=True)
    done[arch] = {**_record(result, sequential.get(arch), distilled.get(arch)),
                  "train_loss": result.train_loss.tolist()}
    write_json_atomic(progress_path, {"key": key, "results": done})
  os.makedirs(workdir, exist_ok=True)
  write_json_atomic(os.path.join(workdir, "eval_results.json"), {
      "source": ev.source, "ipc": ev.ipc if ev.source == "random_real" else None,
      "images": int(len(images)), "lr": lr, "epochs": ev.epochs,
      "results": {r.arch: _record(r, sequential.get(r.arch), distilled.get(r.arch))
                  for r in results}})
  if os.path.exists(progress_path):
    os.remove(progress_path)
  return results
