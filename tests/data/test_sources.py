"""Data sources: IDX files, tfds (mocked), arrays; errors name the field and the fix."""
import os
import time

import ml_collections
import numpy as np
import pytest

from dd_jax.data import folders, indexing, pipeline, sources
from dd_jax.errors import ConfigError
from tests.conftest import write_idx


def _data_config(**kw):
  c = ml_collections.ConfigDict({"name": "fashion_mnist", "source": "auto", "data_dir": "",
                                 "image_size": 0})
  c.update(kw)
  return c


def test_idx_folder_loads_with_shapes_labels_and_fingerprint(idx_dir):
  ds = sources.load_dataset(_data_config(source="idx", data_dir=idx_dir))
  assert ds.x_train.shape == (200, 28, 28, 1) and ds.x_train.dtype == np.uint8
  assert ds.x_test.shape == (50, 28, 28, 1)
  assert ds.num_classes == 10 and ds.class_names[0] == "T-shirt/top"
  assert np.bincount(ds.y_train).tolist() == [20] * 10
  again = sources.load_idx("fashion_mnist", idx_dir)
  assert again.fingerprint == ds.fingerprint
  changed = pipeline.subset(ds, 10, 0)
  assert changed.fingerprint != ds.fingerprint


def test_plain_idx_files_read_like_gzipped(tmp_path):
  x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  write_idx(str(tmp_path / "a"), x)
  write_idx(str(tmp_path / "b.gz"), x)
  np.testing.assert_array_equal(sources.read_idx(str(tmp_path / "a")), x)
  np.testing.assert_array_equal(sources.read_idx(str(tmp_path / "b.gz")), x)


def test_missing_folder_names_the_field_and_the_fix(tmp_path):
  with pytest.raises(ConfigError) as e:
    sources.load_dataset(_data_config(source="idx", data_dir=str(tmp_path / "nope")))
  assert str(e.value).startswith("data.data_dir: ") and "Fix:" in str(e.value)


def test_truncated_and_mismatched_files_are_refused(idx_dir):
  path = os.path.join(idx_dir, "train-labels-idx1-ubyte.gz")
  write_idx(path, np.zeros(7, np.uint8))          # 7 labels for 200 images
  with pytest.raises(ConfigError, match="do not pair up"):
    sources.load_idx("fashion_mnist", idx_dir)
  with open(os.path.join(idx_dir, "t10k-labels-idx1-ubyte"), "wb") as f:
    f.write(bytes([0, 0, 8, 1, 0, 0, 0, 50]) + b"\x00" * 10)   # header says 50
  with pytest.raises(ConfigError, match="truncated"):
    sources.read_idx(os.path.join(idx_dir, "t10k-labels-idx1-ubyte"))


def test_unknown_dataset_and_source():
  with pytest.raises(ConfigError, match="data.name: unknown dataset 'fashion'"):
    sources.load_dataset(_data_config(name="fashion"))
  with pytest.raises(ConfigError, match="data.source"):
    sources.load_dataset(_data_config(source="s3"))


def test_tfds_source_through_mock_data(tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")
  monkeypatch.setattr(sources, "network_reachable", lambda: True)   # as if online
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = sources.load_dataset(_data_config(name="cifar10", source="tfds",
                                           data_dir=str(tmp_path)))
  assert ds.x_train.shape == (12, 32, 32, 3) and ds.x_train.dtype == np.uint8
  assert ds.x_test.shape[1:] == (32, 32, 3)
  assert ds.num_classes == 10 and len(ds.class_names) == 10  # mock: names not loaded
  assert ds.y_train.min() >= 0 and ds.y_train.max() < 10


def test_tfds_failure_is_one_line_with_a_fix(tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")

  def no_network(*args, **kwargs):
    raise ConnectionError("no network here")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
  monkeypatch.setattr(sources, "network_reachable", lambda: True)   # the download fails
  with pytest.raises(ConfigError, match=r"data.name: tfds could not provide 'mnist'"):
    sources.load_dataset(_data_config(name="mnist", source="tfds", data_dir=str(tmp_path)))


def test_offline_tfds_fails_at_once_and_writes_nothing(tmp_path, monkeypatch):
  pytest.importorskip("tensorflow_datasets")
  monkeypatch.setattr(sources, "network_reachable", lambda: False)
  start = time.perf_counter()
  with pytest.raises(ConfigError) as e:
    sources.load_dataset(_data_config(name="cifar10", source="tfds",
                                      data_dir=str(tmp_path / "tfds")))
  message = str(e.value)
  assert message.startswith("data.name: tfds has no prepared 'cifar10'") and "\n" not in message
  assert "data.source='cifar'" in message and "cifar-10-binary.tar.gz" in message
  assert time.perf_counter() - start < 30 and not os.path.exists(tmp_path / "tfds")


def test_arrays_source_and_per_class_sampling():
  x = np.zeros((30, 8, 8), np.uint8)
  y = np.repeat(np.arange(3), 10)
  ds = sources.from_arrays("toy", x, y, x[:6], y[:6])
  assert ds.image_shape == (8, 8, 1) and ds.num_classes == 3
  idx = indexing.sample_per_class(ds.y_train, 3, 4, seed=1)
  assert idx.shape == (12,) and (ds.y_train[idx] == np.repeat(np.arange(3), 4)).all()
  assert len(set(idx.tolist())) == 12
  np.testing.assert_array_equal(idx, indexing.sample_per_class(ds.y_train, 3, 4, seed=1))
  with pytest.raises(ConfigError, match="eval.ipc: 11 images per class asked but class 0 "
                     "has only 10. Fix: set eval.ipc to at most 10"):
    indexing.sample_per_class(ds.y_train, 3, 11, seed=0, field="eval.ipc")
  with pytest.raises(ConfigError, match="uint8"):
    sources.from_arrays("toy", x.astype(np.float32), y, x[:6], y[:6])


def test_held_out_training_images_leave_the_training_split():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 255, (30, 8, 8), dtype=np.uint8)
  y = np.repeat(np.arange(3), 10)
  ds = sources.from_arrays("toy", x, y, x[:6], y[:6])
  config = ml_collections.ConfigDict(dict(holdout_per_class=2))
  p = pipeline.prepare(config, ds)
  assert len(p.y_train) == 24 and len(p.y_holdout) == 6
  assert (np.bincount(p.y_holdout) == 2).all()
  train_rows = {r.tobytes() for r in p.dataset.x_train}
  held = pipeline.split_holdout(ds, 2)[1]
  assert not train_rows & {r.tobytes() for r in held}     # disjoint, none seen in training
  assert p.describe()["holdout_size"] == 6 and p.x_holdout.dtype == np.float32
  assert "holdout_size" not in pipeline.prepare(ml_collections.ConfigDict(), ds).describe()
  with pytest.raises(ConfigError, match=r"^data\.holdout_per_class: 11 images"):
    pipeline.prepare(ml_collections.ConfigDict(dict(holdout_per_class=11)), ds)
  with pytest.raises(ConfigError, match=r"^data\.holdout_per_class: .*none would be left.*"
                                        r"below 10"):   # a class left without training images
    pipeline.prepare(ml_collections.ConfigDict(dict(holdout_per_class=10)), ds)


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_is_the_offline_default():
  ds = sources.load_dataset(_data_config())
  assert ds.x_train.shape == (60_000, 28, 28, 1) and ds.x_test.shape == (10_000, 28, 28, 1)
  assert np.bincount(ds.y_train).tolist() == [6000] * 10


def test_resize_then_centre_crop_for_variable_size_images():
  img = np.zeros((40, 60, 3), np.uint8)
  img[:, 25:35] = 255                       # a centred vertical band
  out = folders.resize_center_crop(img, 32)
  assert out.shape == (32, 32, 3)
  band = np.flatnonzero(out[16, :, 0] > 128)
  assert abs((band.min() + band.max()) / 2 - 15.5) <= 1   # stays centred
  gray = folders.resize_center_crop(np.zeros((50, 30), np.uint8), 16)
  assert gray.shape == (16, 16, 1)


def _png(path, value, size=8):
  from PIL import Image
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def test_tiny_imagenet_folder_layout(tmp_path):
  root = tmp_path / "tiny-imagenet-200"
  wnids = ["n02", "n01"]                 # class order is wnids.txt's, not sorted
  root.mkdir()
  (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
  for c, w in enumerate(wnids):
    for i in range(3):
      _png(str(root / "train" / w / "images" / f"{w}_{i}.JPEG"), 10 * c + i)
  lines = []
  for i, w in enumerate(["n01", "n02", "n01"]):
    _png(str(root / "val" / "images" / f"val_{i}.JPEG"), 100 + i)
    lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t8\t8")
  (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
  config = ml_collections.ConfigDict({"name": "tiny_imagenet", "source": "auto",
                                      "data_dir": str(root)})
  ds = sources.load_dataset(config)
  assert ds.num_classes == 2 and ds.class_names == ("n02", "n01")
  assert ds.x_train.shape == (6, 8, 8, 3) and ds.y_train.tolist() == [0, 0, 0, 1, 1, 1]
  assert ds.x_train[4, 0, 0].tolist() == [11, 11, 11]
  assert ds.y_test.tolist() == [1, 0, 1] and ds.x_test[1, 0, 0, 0] == 101


def test_class_folder_layout_and_its_errors(tmp_path):
  for split in ("train", "test"):
    for c in ("cat", "dog"):
      _png(str(tmp_path / split / c / "a.png"), 50)
  config = ml_collections.ConfigDict({"name": "tiny_imagenet", "source": "folder",
                                      "data_dir": str(tmp_path)})
  ds = sources.load_dataset(config)
  assert ds.class_names == ("cat", "dog") and ds.y_test.tolist() == [0, 1]
  _png(str(tmp_path / "train" / "dog" / "b.png"), 50, size=9)
  with pytest.raises(ConfigError, match=r"data.data_dir: .*dog/b.png is \(9, 9\) px, "
                                        r".*cat/a.png is \(8, 8\) px.*data.image_size"):
    sources.load_dataset(config)
  config.data_dir = str(tmp_path / "missing")
  with pytest.raises(ConfigError, match="data.data_dir: .* is not a folder"):
    sources.load_dataset(config)
