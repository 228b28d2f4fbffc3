"""Defaults shared by every experiment config, and the variant-argument parser.

Each experiment file (`configs/<dataset>_<method>.py`) calls `base_config()`, overrides a
few fields, and applies variants parsed from its argument, e.g.
`--config=configs/fashion_mnist_mtt.py:ipc=10,runlocal`.
"""
from __future__ import annotations

import ml_collections

from dd_jax.data.augment import DEFAULT_STRATEGY


def parse_arg(arg: str | None) -> dict[str, str]:
  """'ipc=10,runlocal' -> {'ipc': '10', 'runlocal': 'true'}."""
  out = {}
  for part in (arg or "").split(","):
    part = part.strip()
    if not part:
      continue
    key, _, value = part.partition("=")
    out[key.strip()] = value.strip() if value else "true"
  return out


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "fashion_mnist"
  config.data.source = "auto"          # auto | tfds | idx
  config.data.data_dir = ""            # IDX folder or tfds data_dir ("" = default)
  config.data.image_size = 0           # 0 = as stored; resize for tfds sources
  config.data.zca = False
  config.data.zca_epsilon = 0.1
  config.data.train_per_class = 0      # 0 = all; >0 keeps that many per class (tiny runs)
  config.data.test_limit = 0           # 0 = whole test set

  config.model = ml_collections.ConfigDict()
  config.model.arch = "ConvNet"
  config.model.width = 128
  config.model.depth = 3
  config.model.norm = "instancenorm"
  config.model.pooling = "avgpooling"
  config.model.activation = "relu"
  config.model.conv_impl = "auto"      # auto | im2col | lax (auto: im2col on CPU)
  config.model.hidden = (128, 128)     # MLP only

  config.expert = ml_collections.ConfigDict()
  config.expert.dir = ""               # "" = <workdir>/experts
  config.expert.num_experts = 100
  config.expert.epochs = 50
  config.expert.optimizer = "sgd"
  config.expert.lr = 0.01
  config.expert.lr_schedule = "constant"   # constant | step (x0.1 at half) | cosine
  config.expert.momentum = 0.0
  config.expert.weight_decay = 0.0
  config.expert.batch_size = 256
  config.expert.dsa_strategy = DEFAULT_STRATEGY   # "none" turns DSA off
  config.expert.eval_test = True       # test accuracy after every epoch (metadata)

  config.eval = ml_collections.ConfigDict()
  config.eval.models = ("ConvNet",)
  config.eval.num_nets = 5
  config.eval.epochs = 1000
  config.eval.lr = 0.01                # for real subsets; distilled sets use their lr
  config.eval.momentum = 0.9
  config.eval.weight_decay = 5e-4
  config.eval.batch_size = 256
  config.eval.dsa_strategy = DEFAULT_STRATEGY
  config.eval.source = "random_real"   # random_real | path to a synthetic-set .npz
  config.eval.ipc = 10
  config.eval.seed = 0
  config.eval.chunk_epochs = 100
  return config


def apply_runlocal(config: ml_collections.ConfigDict) -> None:
  """A variant that runs in seconds on a laptop CPU: the tests use it."""
  config.data.train_per_class = 50
  config.data.test_limit = 500
  config.model.width = 16
  config.expert.num_experts = 2
  config.expert.epochs = 2
  config.expert.batch_size = 64
  config.eval.num_nets = 2
  config.eval.epochs = 4
  config.eval.ipc = 2
