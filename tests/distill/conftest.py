"""Shared by the distillation tests: one tiny dataset and one set of experts."""
import os

import numpy as np
import pytest

from dd_jax.experts import train
from tests.conftest import tiny_idx_config, write_idx_dataset


@pytest.fixture(scope="package")
def shared(tmp_path_factory):
  """One tiny dataset and one set of experts (2 x 2 epochs) for every test here."""
  root = tmp_path_factory.mktemp("distill")
  data_dir = write_idx_dataset(root / "idx")
  experts = str(root / "experts")
  train.train_experts(_config(data_dir, experts), str(root))
  return data_dir, experts


def _config(data_dir, experts, **distill):
  config = tiny_idx_config(data_dir)
  with config.unlocked():
    config.expert.dir = experts
    config.distill.syn_steps = 3
    config.distill.iterations = 4
    config.distill.eval_every = 0
    config.distill.checkpoint_every = 2
    config.distill.update(distill)
  return config


def _synset(workdir):
  with np.load(os.path.join(workdir, "synset.npz")) as f:
    return {k: f[k] for k in f.files}


