"""Knowledge-distillation evaluation (as PAD's appendix reports it): students trained on
the synthetic images learn the softened outputs of a teacher trained on the real data.

The teacher is the last epoch of the first expert of a trajectory folder (`eval.kd_teacher`;
by default the run's own experts): a net of the experts' architecture trained on the
real data for `expert.epochs` epochs. It must have been trained on this dataset (its
class count and image shape are checked).
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections

from dd_jax import models
from dd_jax.data import pipeline
from dd_jax.errors import require
from dd_jax.evaluate.protocol import Teacher
from dd_jax.experts import store
from dd_jax.experts import train as expert_train


def load_teacher(config: ml_collections.ConfigDict, workdir: str,
                 prepared: pipeline.Prepared) -> Teacher:
  """The KD teacher for `prepared`'s data (see the module doc)."""
  ev = config.eval
  directory = ev.kd_teacher or expert_train.expert_dir(config, workdir)
  require(os.path.exists(os.path.join(directory, store.SPEC_FILE)), "eval.kd_teacher",
          f"{directory} holds no experts",
          "train experts first (python -m dd_jax.experts) or give a folder of experts "
          "trained on this dataset")
  reader = store.ExpertReader(directory)
  try:
    data, spec_model = reader.spec["data"], reader.spec["model"]
    require(data["num_classes"] == prepared.num_classes, "eval.kd_teacher",
            f"the teacher in {directory} has {data['num_classes']} classes, the data "
            f"{prepared.num_classes}", "give experts trained on this dataset")
    shape = list(prepared.x_train.shape[1:])
    require(list(data["image_shape"]) == shape, "eval.kd_teacher",
            f"the teacher in {directory} takes {data['image_shape']} images, the data is "
            f"{shape}", "give experts trained on this dataset")
    require(bool(reader.experts), "eval.kd_teacher", f"{directory} has no complete expert",
            "finish training the experts (python -m dd_jax.experts)")
    fields = {k: v for k, v in spec_model.items() if k != "arch"}
    model = models.build(spec_model["arch"], prepared.num_classes, "eval.kd_teacher",
                         conv_impl=config.model.conv_impl, **fields)
    sample = jnp.zeros((1, *shape), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), sample,
                                                  train=False))
    require("batch_stats" not in variables, "eval.kd_teacher",
            f"the teacher in {directory} uses batch norm, whose statistics the trajectory "
            "files do not keep for reading", "use experts without batch norm as teacher")
    params = reader.params(reader.experts[0], reader.epochs, variables["params"])
  finally:
    reader.close()
  return Teacher(model=model, variables={"params": params}, temperature=ev.kd_temperature)
