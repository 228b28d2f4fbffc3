"""The method interface: every registered name is a method / parameterisation class, and
the worked example of docs/architecture.md (examples/minimal_method.py), registered with
one line, runs through the generic loop: steps, checkpoints, resumption, export."""
import importlib.util
import os

import numpy as np
import pytest

from dd_jax.distill import run
from dd_jax.distill.methods import METHODS, PARAMETERIZATIONS, base
from dd_jax.errors import ConfigError
from tests.conftest import ROOT, tiny_idx_config


def _example():
  path = os.path.join(ROOT, "examples", "minimal_method.py")
  spec = importlib.util.spec_from_file_location("minimal_method", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.MeanMatching


def test_registries_name_their_classes():
  for name, method in METHODS.items():
    assert issubclass(method, base.Method) and method.name == name
  for name, param in PARAMETERIZATIONS.items():
    assert issubclass(param, base.Parameterization) and param.name == name


def _config(idx_dir, **distill):
  config = tiny_idx_config(idx_dir)
  with config.unlocked():
    config.distill.update({"method": "mean", "batch_real": 5, "lr_img": 2.0,
                           "img_momentum": 0.0, "iterations": 4, "eval_every": 0,
                           "checkpoint_every": 2, **distill})
  return config


def test_a_method_added_with_one_registry_line_runs_through_the_loop(idx_dir, tmp_path,
                                                                   monkeypatch):
  with pytest.raises(ConfigError, match="distill.method: unknown 'mean'"):
    run.validate(_config(idx_dir))
  monkeypatch.setitem(METHODS, "mean", _example())
  config = _config(idx_dir)
  distiller = run.Distiller(config, str(tmp_path / "a"))
  init = np.asarray(distiller.initial_state().images)
  summary = distiller.run()
  assert "distilled 4 steps" in summary
  assert not (tmp_path / "a" / "experts").exists()   # it needs none
  with np.load(tmp_path / "a" / "synset.npz") as f:
    images, labels = f["images"], f["labels"]
  prepared = distiller.prepared
  means = np.stack([prepared.x_train[prepared.y_train == c].mean(0) for c in range(10)])
  before = np.abs(init - means[labels]).mean()
  after = np.abs(images - means[labels]).mean()
  assert after < 0.8 * before                      # moved toward its class's mean
  # Stopped after 2 steps and resumed: the same set as the uninterrupted run.
  short = _config(idx_dir, iterations=2)
  run.Distiller(short, str(tmp_path / "b")).run()
  assert "distilled 4 steps" in run.Distiller(config, str(tmp_path / "b")).run()
  with np.load(tmp_path / "b" / "synset.npz") as f:
    np.testing.assert_array_equal(f["images"], images)
  with pytest.raises(ConfigError, match="distill.batch_real"):
    run.validate(_config(idx_dir, batch_real=0))
