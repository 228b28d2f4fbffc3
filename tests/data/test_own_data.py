"""One's own data: an .npz of arrays, class folders (any size, grey or RGB), the official
CIFAR binaries; every bad file is one line naming it and the fix."""
import io
import os
import tarfile

import ml_collections
import numpy as np
import pytest

from dd_jax.data import pipeline, sources
from dd_jax.errors import ConfigError


def _config(source, data_dir, name="my_data", image_size=0):
  return ml_collections.ConfigDict({"name": name, "source": source, "data_dir": str(data_dir),
                                    "image_size": image_size})


def _npz(path, **arrays):
  base = dict(x_train=np.zeros((6, 5, 5), np.uint8), y_train=np.array([0, 1, 2] * 2),
              x_test=np.zeros((3, 5, 5), np.uint8), y_test=np.array([0, 1, 2]))
  base.update(arrays)
  np.savez(path, **{k: v for k, v in base.items() if v is not None})
  return path


def test_an_npz_under_any_name_loads_and_prepares(tmp_path):
  x = np.random.default_rng(0).random((6, 5, 5, 3)).astype(np.float32)   # floats in [0, 1]
  path = _npz(tmp_path / "mine.npz", x_train=x, x_test=x[:3],
              class_names=np.array(["a", "b", "c"]))
  ds = sources.load_dataset(_config("npz", path))
  assert ds.name == "my_data" and ds.class_names == ("a", "b", "c")
  assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (6, 5, 5, 3)
  np.testing.assert_array_equal(ds.x_train, np.round(x * 255).astype(np.uint8))
  grey = sources.load_dataset(_config("npz", _npz(tmp_path / "grey.npz")))   # NHW
  assert grey.x_train.shape == (6, 5, 5, 1) and grey.num_classes == 3
  prepared = pipeline.prepare(ml_collections.ConfigDict(dict(
      _config("npz", path).to_dict(), zca=False, zca_epsilon=0.1, train_per_class=0,
      test_limit=0, holdout_per_class=0)))
  assert prepared.num_classes == 3 and prepared.x_train.shape == (6, 5, 5, 3)


@pytest.mark.parametrize("arrays, words", [
    (dict(y_test=None), "lacks y_test"),
    (dict(y_train=np.array([0, 1, 5] * 2), class_names=np.array(["a", "b", "c"])),
     "labels must be class ids in 0..2"),
    (dict(y_train=np.array([0, 1, 1] * 2)), "class '2' has no training images"),
    (dict(y_train=np.array([0, 1, 0] * 2), class_names=np.array(["a", "b", "c"]),
          y_test=np.array([0, 1, 1])), "class 'c' has no training images"),
    (dict(y_train=np.array([0, 1, 2, 0, 1, 2, 0])), "6 train images, 7 labels"),
    (dict(x_test=np.zeros((3, 4, 4), np.uint8)), "give both splits one image shape"),
    (dict(x_train=np.full((6, 5, 5), 2.0)), "float64 outside [0, 1]"),
    (dict(x_train=np.zeros((6, 3, 5, 5), np.uint8)), "transpose NCHW"),
])
def test_a_bad_npz_is_one_line_naming_the_file(tmp_path, arrays, words):
  path = _npz(tmp_path / "bad.npz", **arrays)
  with pytest.raises(ConfigError) as e:
    sources.load_dataset(_config("npz", path))
  message = str(e.value)
  assert message.startswith("data.data_dir: ") and str(path) in message, message
  assert words in message and "\n" not in message and ". Fix: " in message, message


def test_an_unreadable_npz_and_a_test_class_the_training_split_lacks(tmp_path):
  (tmp_path / "junk.npz").write_bytes(b"not a zip")
  with pytest.raises(ConfigError, match="junk.npz is not a readable .npz"):
    sources.load_dataset(_config("npz", tmp_path / "junk.npz"))
  path = _npz(tmp_path / "extra.npz", y_train=np.array([0, 1, 0, 1, 0, 1]),
              y_test=np.array([0, 1, 2]), class_names=np.array(["a", "b", "c"]))
  with pytest.raises(ConfigError, match="class 'c' has no training images"):
    sources.load_dataset(_config("npz", path))


def _image(path, array):
  from PIL import Image
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)


def test_class_folders_grey_stay_one_channel_and_any_size_is_resized(tmp_path):
  for split in ("train", "test"):
    for c, size in (("cat", (40, 30)), ("dog", (20, 20))):
      _image(str(tmp_path / split / c / "a.png"), np.full(size, 80, np.uint8))   # mode L
  with pytest.raises(ConfigError, match=r"dog/a.png is \(20, 20\) px.*set data.image_size"):
    sources.load_dataset(_config("folder", tmp_path))
  ds = sources.load_dataset(_config("folder", tmp_path, image_size=16))
  assert ds.x_train.shape == (2, 16, 16, 1) and ds.class_names == ("cat", "dog")
  assert int(ds.x_train[0, 8, 8, 0]) == 80 and ds.name == "my_data"
  _image(str(tmp_path / "train" / "dog" / "rgb.png"), np.full((20, 20, 3), 9, np.uint8))
  assert sources.load_dataset(_config("folder", tmp_path, image_size=16)).x_train.shape[-1] == 3


@pytest.mark.parametrize("damage, words", [
    (lambda root: (root / "train" / "dog" / "a.png").write_bytes(b"\x89PNG broken"),
     "cannot read"),
    (lambda root: (root / "train" / "bird").mkdir(), "holds no images"),
    (lambda root: _image(str(root / "test" / "fox" / "a.png"), np.zeros((8, 8), np.uint8)),
     "is a test class the training split lacks"),
])
def test_bad_class_folders_are_one_line_naming_what_is_wrong(tmp_path, damage, words):
  for split in ("train", "test"):
    for c in ("cat", "dog"):
      _image(str(tmp_path / split / c / "a.png"), np.zeros((8, 8), np.uint8))
  damage(tmp_path)
  with pytest.raises(ConfigError) as e:
    sources.load_dataset(_config("folder", tmp_path))
  message = str(e.value)
  assert message.startswith("data.data_dir: ") and str(tmp_path) in message, message
  assert words in message and "\n" not in message and ". Fix: " in message, message


def _cifar_records(labels, label_bytes=1):
  """Records whose R, G, B planes hold 10 + label, 100, 200."""
  out = b""
  for y in labels:
    planes = np.concatenate([np.full(1024, 10 + y), np.full(1024, 100), np.full(1024, 200)])
    out += bytes([y] * label_bytes) + planes.astype(np.uint8).tobytes()
  return out


def _cifar10_files():
  files = {f"data_batch_{i}.bin": _cifar_records([(i + k) % 10 for k in range(10)])
           for i in range(1, 6)}
  files["test_batch.bin"] = _cifar_records(list(range(10)))
  files["batches.meta.txt"] = "\n".join(f"class{i}" for i in range(10)).encode() + b"\n"
  return files


def test_the_official_cifar10_binary_archive_and_folder(tmp_path):
  archive = tmp_path / "cifar-10-binary.tar.gz"
  with tarfile.open(archive, "w:gz") as tar:
    for name, data in _cifar10_files().items():
      info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  ds = sources.load_dataset(_config("cifar", archive, name="cifar10"))
  assert ds.x_train.shape == (50, 32, 32, 3) and ds.x_test.shape == (10, 32, 32, 3)
  assert ds.class_names[3] == "class3" and ds.y_test.tolist() == list(range(10))
  assert ds.x_test[4, 5, 6].tolist() == [14, 100, 200]      # R, G, B planes to HWC
  folder = tmp_path / "cifar-10-batches-bin"
  folder.mkdir()
  for name, data in _cifar10_files().items():
    (folder / name).write_bytes(data)
  again = sources.load_dataset(_config("cifar", tmp_path, name="cifar10"))
  assert again.fingerprint == ds.fingerprint
  (folder / "test_batch.bin").write_bytes(b"\x00" * 100)
  with pytest.raises(ConfigError, match="test_batch.bin is 100 bytes, not whole 3073-byte"):
    sources.load_dataset(_config("cifar", tmp_path, name="cifar10"))
  os.remove(folder / "data_batch_2.bin")
  with pytest.raises(ConfigError, match="lacks data_batch_2.bin"):
    sources.load_dataset(_config("cifar", folder, name="cifar10"))


def test_cifar100_binary_uses_the_fine_label(tmp_path):
  fine = [(7 * i) % 100 for i in range(100)]
  records = b"".join(bytes([y % 20]) + _cifar_records([y]) for y in fine)   # coarse, fine
  (tmp_path / "train.bin").write_bytes(records)
  (tmp_path / "test.bin").write_bytes(records)
  ds = sources.load_dataset(_config("cifar", tmp_path, name="cifar100"))
  assert ds.num_classes == 100 and ds.y_train.tolist() == fine
  assert ds.x_train[1, 0, 0].tolist() == [17, 100, 200]


def test_unknown_names_point_at_own_data_sources():
  with pytest.raises(ConfigError, match="data.source='npz'.*'folder'"):
    sources.load_dataset(_config("auto", "", name="my_data"))
