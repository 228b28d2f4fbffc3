"""The config of one distillation run, checked once, up front, with messages that name
the field: the fields every method reads here, then the method's and the
parameterisation's own (distill/methods/), the experts' and the evaluation's.
(A SeqMatch config is checked by distill/seqmatch.py, subset by subset, with this.)
"""
from __future__ import annotations

import ml_collections

from dd_jax import losses
from dd_jax.data import augment, pipeline
from dd_jax.distill import state as state_lib
from dd_jax.distill.methods import METHODS, PARAMETERIZATIONS
from dd_jax.errors import require, require_at_least
from dd_jax.evaluate import run as eval_run
from dd_jax.experts import train as expert_train


def validate_run(config: ml_collections.ConfigDict) -> None:
  d = config.distill
  require_at_least(d, "distill", {"ipc": 1, "syn_steps": 1, "expert_epochs": 1,
                                  "max_start_epoch": 1, "iterations": 0, "batch_syn": 0,
                                  "eval_every": 0, "log_every": 1, "checkpoint_every": 1,
                                  "keep_checkpoints": 1, "max_bad_steps": 1})
  require(d.lr_img > 0, "distill.lr_img", f"is {d.lr_img}", "use a positive value")
  require(d.lr_lr >= 0, "distill.lr_lr", f"is {d.lr_lr}", "use 0 (fixed lr) or more")
  require(0 < d.nonfinite_lr_factor <= 1, "distill.nonfinite_lr_factor",
          f"is {d.nonfinite_lr_factor}", "use a factor in (0, 1]: 1 keeps the lrs, 0.5 halves "
          "them after each non-finite step")
  require(d.lr_teacher > 0, "distill.lr_teacher", f"is {d.lr_teacher}",
          "start the student lr at a positive value (the expert lr)")
  require(d.pix_init in state_lib.PIX_INITS, "distill.pix_init", f"unknown {d.pix_init!r}",
          f"use one of {', '.join(state_lib.PIX_INITS)}")
  require(d.syn_lr_param in state_lib.LR_PARAMS, "distill.syn_lr_param",
          f"unknown {d.syn_lr_param!r}", f"use one of {', '.join(state_lib.LR_PARAMS)}")
  require(d.min_syn_lr > 0, "distill.min_syn_lr", f"is {d.min_syn_lr}",
          "use a small positive floor such as 1e-6")
  augment.check_strategy(d.dsa_strategy, "distill.dsa_strategy")
  require(d.param_mask in losses.MASK_RULES, "distill.param_mask",
          f"unknown {d.param_mask!r}", f"use one of {', '.join(losses.MASK_RULES)}")
  require(0.0 <= d.param_mask_ratio < 1.0, "distill.param_mask_ratio",
          f"is {d.param_mask_ratio}, outside [0, 1)",
          "give the fraction of the flattened parameters to drop, e.g. 0.25")
  require(d.remat_policy in losses.REMAT_POLICIES, "distill.remat_policy",
          f"unknown {d.remat_policy!r}", f"use one of {', '.join(losses.REMAT_POLICIES)}")
  require(d.method in METHODS, "distill.method", f"unknown {d.method!r}",
          f"use one of {', '.join(METHODS)}")
  require(d.parameterization in PARAMETERIZATIONS, "distill.parameterization",
          f"unknown {d.parameterization!r}", f"use one of {', '.join(PARAMETERIZATIONS)}")
  require(config.eval.source == "random_real", "eval.source",
          f"is {config.eval.source!r}, but a distillation evaluates the set it distils",
          "drop the flag, or evaluate a stored set with python -m dd_jax.evaluate "
          "--config.eval.source=<synset.npz>")
  METHODS[d.method].validate(config)
  PARAMETERIZATIONS[d.parameterization].validate(config)
  expert_train.validate(config)
  eval_run.validate(config)


def validate_against_data(config: ml_collections.ConfigDict,
                          prepared: pipeline.Prepared) -> None:
  """What needs the data's shapes, before anything is written (IDC's factor)."""
  METHODS[config.distill.method].validate_against_data(config, prepared.x_train.shape[1:])
