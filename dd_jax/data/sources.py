"""Labelled image sources behind one interface: tfds by name, IDX files, arrays.

Every source returns a `Dataset` of uint8 NHWC images and int32 labels for train and
test. Scaling and normalisation happen later (data/preprocess.py), so a dataset's
fingerprint (a hash of its raw pixels) identifies the data independently of them.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os

import numpy as np

from dd_jax.data import files, folders
from dd_jax.errors import ConfigError, require


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  x_train: np.ndarray  # [N, H, W, C] uint8
  y_train: np.ndarray  # [N] int32
  x_test: np.ndarray   # [M, H, W, C] uint8
  y_test: np.ndarray   # [M] int32
  num_classes: int
  class_names: tuple[str, ...]

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.x_train.shape[1:])

  @property
  def fingerprint(self) -> str:
    """sha256 (16 hex) of the raw train pixels and labels: tells datasets apart."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(self.x_train).tobytes())
    h.update(np.ascontiguousarray(self.y_train).astype(np.int32).tobytes())
    return h.hexdigest()[:16]


# Datasets that tfds can build, by the names our configs use.
TFDS_NAMES = {
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "svhn": "svhn_cropped",
    "svhn_cropped": "svhn_cropped",
    "imagenette": "imagenette/320px-v2",
}

# Where local IDX copies live by default (Debian's dataset-fashion-mnist package).
DEFAULT_IDX_DIRS = {
    "fashion_mnist": "/usr/share/datasets/fashion-mnist",
}

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
CLASS_NAMES = {
    "fashion_mnist": FASHION_MNIST_CLASSES,
    "mnist": tuple(str(i) for i in range(10)),
}


# ----------------------------------------------------------------------------- IDX
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file (optionally gzipped) into an array of its stored shape."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise ConfigError("data.data_dir", f"{path} is not an unsigned-byte IDX file",
                      "point data.data_dir at the original *-ubyte(.gz) files")
  ndim = data[3]
  dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
  body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(dims)):
    raise ConfigError("data.data_dir", f"{path} is truncated: header says {dims}, "
                      f"{body.size} bytes follow", "download or reinstall the file")
  return body.reshape(dims)


def load_idx(name: str, data_dir: str | None) -> Dataset:
  """Loads MNIST-style IDX files from a directory (plain or .gz)."""
  data_dir = data_dir or DEFAULT_IDX_DIRS.get(name)
  require(data_dir is not None, "data.data_dir",
          f"no default IDX directory is known for {name!r}",
          "set data.data_dir to the folder holding the *-idx?-ubyte(.gz) files")
  require(os.path.isdir(data_dir), "data.data_dir", f"{data_dir} does not exist",
          "install it (apt-get install dataset-fashion-mnist) or set data.data_dir")
  arrays = {}
  for key, stem in _IDX_FILES.items():
    candidates = [os.path.join(data_dir, stem + ext) for ext in ("", ".gz")]
    path = next((p for p in candidates if os.path.exists(p)), None)
    require(path is not None, "data.data_dir", f"{data_dir} has no {stem}[.gz]",
            "point data.data_dir at a folder with the four IDX files")
    arrays[key] = read_idx(path)
  for split in ("train", "test"):
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    require(x.ndim == 3 and y.ndim == 1 and len(x) == len(y), "data.data_dir",
            f"{split} images {x.shape} and labels {y.shape} do not pair up",
            "point data.data_dir at matching image and label files")
  num_classes = int(arrays["y_train"].max()) + 1
  return Dataset(
      name=name,
      x_train=arrays["x_train"][..., None], y_train=arrays["y_train"].astype(np.int32),
      x_test=arrays["x_test"][..., None], y_test=arrays["y_test"].astype(np.int32),
      num_classes=num_classes,
      class_names=CLASS_NAMES.get(name, tuple(str(i) for i in range(num_classes))))


# ---------------------------------------------------------------------------- tfds
TFDS_HOST = ("storage.googleapis.com", 443)   # where tfds downloads from (GCS mirror)


def network_reachable(timeout_s: float = 3.0) -> bool:
  """Whether tfds's download host answers: offline, a download would only retry."""
  import socket  # pylint: disable=g-import-not-at-top
  try:
    socket.create_connection(TFDS_HOST, timeout=timeout_s).close()
    return True
  except OSError:
    return False


def load_tfds(name: str, data_dir: str | None, image_size: int | None = None) -> Dataset:
  """Loads a tfds dataset through `tfds.data_source` (array_record; no TensorFlow). One
  that is not prepared, with no network to download it, is refused at once."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds_name = TFDS_NAMES[name]
  splits = {}
  builder = tfds.builder(tfds_name, data_dir=data_dir)
  if not builder.is_prepared() and not network_reachable():
    archive = ("; or the official binary archive: data.source='cifar', data.data_dir="
               f"<{name.replace('cifar', 'cifar-')}-binary.tar.gz>" if name in files.CIFAR
               else "")
    raise ConfigError(
        "data.name", f"tfds has no prepared {tfds_name!r} in {os.path.dirname(builder.data_dir)} "
        f"and {TFDS_HOST[0]} cannot be reached to download it",
        "prepare it where there is network (tfds build " + tfds_name + ") and set "
        "data.data_dir to that folder" + archive)
  try:
    builder.download_and_prepare(
        file_format=tfds.core.FileFormat.ARRAY_RECORD)
    for split in ("train", "test" if "test" in builder.info.splits else "validation"):
      source = builder.as_data_source(split=split)
      xs, ys = [], []
      for i in range(len(source)):
        ex = source[i]
        img = np.asarray(ex["image"])
        if image_size is not None and img.shape[:2] != (image_size, image_size):
          img = folders.resize_center_crop(img, image_size)
        xs.append(img)
        ys.append(int(ex["label"]))
      splits[split] = (np.stack(xs).astype(np.uint8), np.asarray(ys, np.int32))
    label_names = tuple(builder.info.features["label"].names)
  except ConfigError:
    raise
  except Exception as e:  # download or build failure: say what to do, not where.
    raise ConfigError(
        "data.name", f"tfds could not provide {tfds_name!r} "
        f"({type(e).__name__}: {' '.join(str(e).split())})",
        "prepare it with network access (tfds build) and set data.data_dir, or use "
        "data.source='idx' with local files") from e
  (x_tr, y_tr), (x_te, y_te) = splits["train"], splits[[k for k in splits if k != "train"][0]]
  if x_tr.ndim == 3:
    x_tr, x_te = x_tr[..., None], x_te[..., None]
  return Dataset(name=name, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                 num_classes=len(label_names), class_names=label_names)


# -------------------------------------------------------------------------- arrays
def from_arrays(name: str, x_train, y_train, x_test, y_test, num_classes: int | None = None,
                class_names=None) -> Dataset:
  """Wraps in-memory arrays (uint8 NHWC, or NHW for one channel)."""
  x_train, x_test = np.asarray(x_train), np.asarray(x_test)
  if x_train.ndim == 3:
    x_train, x_test = x_train[..., None], x_test[..., None]
  require(x_train.ndim == 4 and x_train.shape[1:] == x_test.shape[1:], "data.arrays",
          f"train {x_train.shape} and test {x_test.shape} images must be NHWC alike",
          "pass uint8 arrays shaped [N, H, W, C]")
  require(x_train.dtype == np.uint8 and x_test.dtype == np.uint8, "data.arrays",
          f"images are {x_train.dtype}/{x_test.dtype}", "pass uint8 pixels in 0..255")
  y_train, y_test = np.asarray(y_train, np.int32), np.asarray(y_test, np.int32)
  require(len(y_train) == len(x_train) and len(y_test) == len(x_test), "data.arrays",
          "labels and images differ in length", "pass one label per image")
  num_classes = num_classes or int(max(y_train.max(), y_test.max())) + 1
  return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 num_classes=num_classes,
                 class_names=tuple(class_names or (str(i) for i in range(num_classes))))


# ------------------------------------------------------------------------ by config
SOURCES = ("auto", "tfds", "idx", "folder", "npz", "cifar")

# Datasets read from image folders (data.source="folder"; not in tfds).
FOLDER_NAMES = ("tiny_imagenet",)

# Sources of one's own data: any data.name (a label for the run) is accepted.
OWN_DATA = ("folder", "npz")


def load_dataset(data_config) -> Dataset:
  """Loads the dataset a config's `data` section names.

  Fields: name, source ('auto' | 'tfds' | 'idx' | 'folder' | 'npz' | 'cifar'), data_dir,
  image_size (resize). 'auto' reads local IDX files where a default folder exists, an
  image folder for FOLDER_NAMES, tfds otherwise. 'folder' (class folders) and 'npz'
  (arrays) take one's own data under any name; 'cifar' the official CIFAR binaries
  (data/files.py).
  """
  name = data_config.name
  source = data_config.get("source", "auto")
  require(source in SOURCES, "data.source", f"unknown source {source!r}",
          f"use one of {', '.join(SOURCES)}")
  known = sorted(set(TFDS_NAMES) | set(DEFAULT_IDX_DIRS) | set(FOLDER_NAMES))
  require(source in OWN_DATA or name in known, "data.name", f"unknown dataset {name!r}",
          f"use one of {', '.join(known)}; for your own data set data.source='npz' (a "
          "file of arrays) or 'folder' (train/<class>/*, test/<class>/*) and data.data_dir")
  data_dir = data_config.get("data_dir") or None
  image_size = data_config.get("image_size") or None
  if source == "auto":
    local = data_dir or DEFAULT_IDX_DIRS.get(name)
    source = ("folder" if name in FOLDER_NAMES else
              "idx" if local and os.path.isdir(local) and name in DEFAULT_IDX_DIRS else "tfds")
  if source in ("folder", "npz", "cifar"):
    arrays = (folders.load_folder(data_dir, image_size) if source == "folder" else
              files.load_npz(data_dir) if source == "npz" else files.load_cifar(name, data_dir))
    classes = arrays.pop("classes")
    ds = Dataset(name=name, num_classes=len(classes), class_names=classes, **arrays)
  elif source == "idx":
    ds = load_idx(name, data_dir)
  else:
    ds = load_tfds(name, data_dir, image_size)
  if image_size is not None:
    require(ds.image_shape[0] == image_size, "data.image_size",
            f"{name} images are {ds.image_shape[0]} px, config asks {image_size}",
            "leave data.image_size unset or set it to the stored size")
  return ds
