"""`eval.kd`: the evaluation reports KD beside the ordinary protocol, taught by the run's
experts; a teacher of another dataset is refused."""
import json
import os
import shutil

import pytest

from dd_jax.errors import ConfigError
from dd_jax.evaluate import run as eval_run
from tests.distill.conftest import _config


def _kd_config(shared, teacher=""):
  config = _config(*shared)
  with config.unlocked():
    config.eval.kd, config.eval.kd_teacher, config.eval.kd_temperature = True, teacher, 3.0
    config.eval.ipc = 2
  return config


def test_kd_results_sit_beside_the_ordinary_ones(shared, tmp_path):
  eval_run.evaluate_from_config(_kd_config(shared), str(tmp_path))
  with open(tmp_path / "eval_results.json") as f:
    results = json.load(f)["results"]["ConvNet"]
  assert len(results["accuracies"]) == 2 and results["kd"]["temperature"] == 3.0
  assert len(results["kd"]["accuracies"]) == 2 and 0 <= results["kd"]["mean"] <= 1


def test_a_teacher_of_another_class_count_is_refused(shared, tmp_path):
  other = str(tmp_path / "experts_7")
  shutil.copytree(shared[1], other)
  spec_path = os.path.join(other, "experts.json")
  with open(spec_path) as f:
    spec = json.load(f)
  spec["data"]["num_classes"] = 7
  with open(spec_path, "w") as f:
    json.dump(spec, f)
  with pytest.raises(ConfigError, match=r"eval\.kd_teacher: the teacher in .* has 7 "
                                        r"classes, the data 10\. Fix: give experts"):
    eval_run.evaluate_from_config(_kd_config(shared, other), str(tmp_path / "eval"))
  assert not os.path.exists(tmp_path / "eval" / "eval_results.json")
