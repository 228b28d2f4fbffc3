"""`configs/cifar10_pad.py` end to end, as a user's first command, on tfds mock data:
difficulty scores, scheduled GSAM experts, correctly-classified init, soft labels,
the depth mask, evaluation with soft labels."""
import json
import os

import numpy as np
import pytest

from configs import cifar10_pad
from dd_jax.data import sources
from dd_jax.distill import run

tfds = pytest.importorskip("tensorflow_datasets")


def _learnable_cifar(self, split, **kwargs):
  """CIFAR-10-shaped examples a tiny net learns in two epochs: class c is a bright
  horizontal band at rows 3c..3c+2 in channel c % 3, over noise."""
  rng = np.random.default_rng(0 if split == "train" else 1)
  out = []
  for i in range(600 if split == "train" else 100):
    label = i % 10
    image = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
    image[3 * label: 3 * label + 3, :, label % 3] = 255
    out.append({"image": image, "label": label})
  return out


def test_cifar10_pad_runlocal_distils_with_every_pad_module(tmp_path, monkeypatch):
  monkeypatch.setattr(sources, "network_reachable", lambda: True)   # mock data stands in
  config = cifar10_pad.get_config("runlocal")
  with config.unlocked():
    config.data.data_dir = str(tmp_path / "tfds")
    # At lr 0.01 two tiny epochs leave some band unlearnt, and pix_init='correct' then
    # refuses to start (distill.label_epoch: ... classifies only 0 ...), as it should.
    config.expert.lr = 0.05
  with tfds.testing.mock_data(as_data_source_fn=_learnable_cifar,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    distiller = run.Distiller(config, str(tmp_path / "work"))
    init = distiller.initial_state()
    summary = distiller.run()
  assert "distilled 4 steps" in summary and "ConvNet at step 4" in summary
  work = tmp_path / "work"
  assert os.path.exists(work / "scores" / "el2n.npz")
  with open(work / "experts" / "experts.json") as f:
    spec = json.load(f)
  assert spec["sam"]["name"] == "gsam" and spec["data_schedule"]["initial_ratio"] == 0.75
  sizes = [m["train_size"] for m in distiller.method.reader.metadata(0)["metrics"][1:]]
  assert sizes == [int(0.75 * 50) * 10, int((0.75 + 0.25 / 20) * 50) * 10]
  assert init.labels.shape == (10, 10)               # soft labels from the experts
  assert (np.asarray(init.labels).argmax(-1) == np.arange(10)).all()
  assert distiller.mask is not None                  # FIEM's depth mask
  with np.load(work / "synset.npz") as f:
    assert f["labels"].shape == (10, 10) and f["images"].shape == (10, 32, 32, 3)
