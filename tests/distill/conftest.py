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




def expert_segment(config, experts: str):
  """(model, prepared data, expert 0's epoch 0 and epoch 1 params) of a `shared` run."""
  import jax
  from dd_jax import models
  from dd_jax.data import pipeline
  from dd_jax.experts import store
  prepared = pipeline.prepare(config.data)
  model = models.from_config(config.model, 10)
  reader = store.ExpertReader(experts)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                          model.init(jax.random.PRNGKey(0), prepared.x_train[:1],
                                     train=False)["params"])
  start, target = reader.params(0, 0, abstract), reader.params(0, 1, abstract)
  reader.close()
  return model, prepared, start, target
