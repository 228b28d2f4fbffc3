"""Config-driven evaluation inputs: stored synthetic sets are checked against the data."""
import json
import os

import numpy as np
import pytest

from configs import fashion_mnist_mtt
from dd_jax.data import pipeline
from dd_jax.errors import ConfigError
from dd_jax.evaluate import protocol, run


@pytest.fixture
def prepared(idx_dir):
  config = fashion_mnist_mtt.get_config("runlocal")
  with config.unlocked():
    config.data.source, config.data.data_dir, config.data.train_per_class = "idx", idx_dir, 0
  return pipeline.prepare(config.data)


def test_synset_with_matching_metadata_loads_images_labels_and_lr(prepared, tmp_path):
  path = str(tmp_path / "syn.npz")
  np.savez(path, images=np.zeros((10, 28, 28, 1), np.float32), labels=np.arange(10),
           lr=np.float32(0.02), meta=json.dumps({"data": prepared.describe()}))
  images, labels, lr = run.load_synset(path, prepared)
  assert images.shape == (10, 28, 28, 1) and labels.tolist() == list(range(10))
  assert lr == pytest.approx(0.02)


def test_synset_from_other_data_or_shape_is_refused(prepared, tmp_path):
  other = prepared.describe()
  other["preprocessing"] = dict(other["preprocessing"], zca=True)
  path = str(tmp_path / "zca.npz")
  np.savez(path, images=np.zeros((10, 28, 28, 1), np.float32), labels=np.arange(10),
           meta=json.dumps({"data": other}))
  with pytest.raises(ConfigError, match=r"eval.source: .* other data: preprocessing.zca"):
    run.load_synset(path, prepared)
  path = str(tmp_path / "rgb.npz")
  np.savez(path, images=np.zeros((10, 32, 32, 3), np.float32), labels=np.arange(10))
  with pytest.raises(ConfigError, match="eval.source: images are"):
    run.load_synset(path, prepared)
  with pytest.raises(ConfigError, match="does not exist"):
    run.load_synset(str(tmp_path / "none.npz"), prepared)


def test_an_interrupted_evaluation_resumes_at_the_next_architecture(idx_dir, tmp_path,
                                                                   monkeypatch):
  config = fashion_mnist_mtt.get_config("runlocal")
  with config.unlocked():
    config.data.source, config.data.data_dir, config.data.train_per_class = "idx", idx_dir, 0
    config.model.width = 8
    config.eval.models, config.eval.epochs = ("MLP", "ConvNet"), 2
  prepared = pipeline.prepare(config.data)
  calls = []
  real = protocol.evaluate_synset

  def crash_on_convnet(*args, arch, **kwargs):
    calls.append(arch)
    if arch == "ConvNet":
      raise KeyboardInterrupt   # the process dies during the second architecture
    return real(*args, arch=arch, **kwargs)

  work = str(tmp_path / "w")
  monkeypatch.setattr(protocol, "evaluate_synset", crash_on_convnet)
  with pytest.raises(KeyboardInterrupt):
    run.evaluate_from_config(config, work, prepared)
  assert os.listdir(work) == [run.PROGRESS]   # no results file yet
  counting = lambda *a, arch, **k: calls.append(arch) or real(*a, arch=arch, **k)  # noqa: E731
  monkeypatch.setattr(protocol, "evaluate_synset", counting)
  calls.clear()
  resumed = run.evaluate_from_config(config, work, prepared)
  assert calls == ["ConvNet"] and sorted(os.listdir(work)) == ["eval_results.json"]
  # The same as an uninterrupted evaluation, MLP included.
  calls.clear()
  whole = run.evaluate_from_config(config, str(tmp_path / "whole"), prepared)
  assert calls == ["MLP", "ConvNet"]
  for a, b in zip(resumed, whole):
    assert a.arch == b.arch
    np.testing.assert_array_equal(a.accuracies, b.accuracies)
  # A record made with other settings is not reused.
  monkeypatch.setattr(protocol, "evaluate_synset", crash_on_convnet)
  with pytest.raises(KeyboardInterrupt):
    run.evaluate_from_config(config, work, prepared)
  with config.unlocked():
    config.eval.epochs = 3
  monkeypatch.setattr(protocol, "evaluate_synset", counting)
  calls.clear()
  run.evaluate_from_config(config, work, prepared)
  assert calls == ["MLP", "ConvNet"]
