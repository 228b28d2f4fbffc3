"""Config-driven evaluation inputs: stored synthetic sets are checked against the data."""
import json

import numpy as np
import pytest

from configs import fashion_mnist_mtt
from dd_jax.data import pipeline
from dd_jax.errors import ConfigError
from dd_jax.evaluate import run


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
