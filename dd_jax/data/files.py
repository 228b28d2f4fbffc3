"""One's own data from plain files: an .npz of arrays, or the official CIFAR binaries.

  npz     data.data_dir = a file with x_train, y_train, x_test, y_test (uint8 pixels, or
          floats in [0, 1]; [N, H, W, C] or [N, H, W]) and, optionally, class_names
  cifar   data.data_dir = the official binary archive (cifar-10-binary.tar.gz,
          cifar-100-binary.tar.gz) or the folder it unpacks to (cifar-10-batches-bin/,
          cifar-100-binary/): records of a label byte (CIFAR-100: coarse, fine) and 3072
          bytes of R, G and B planes; the python-pickle version is not read (no pickles)

Every reader returns x_train, y_train, x_test, y_test (uint8 NHWC, int32) and class
names, checked by `check_split_labels`: a bad file is one line naming it and the fix.
"""
from __future__ import annotations

import io
import os
import tarfile

import numpy as np

from dd_jax.errors import ConfigError, require

FIELD = "data.data_dir"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def check_split_labels(y_train: np.ndarray, y_test: np.ndarray, classes: tuple[str, ...],
                       where: str) -> None:
  """Labels in 0..C-1, every class with training images, no test class the training
  split lacks."""
  c = len(classes)
  for split, y in (("train", y_train), ("test", y_test)):
    require(y.ndim == 1 and (len(y) == 0 or (y.min() >= 0 and y.max() < c)), FIELD,
            f"{where}: {split} labels must be class ids in 0..{c - 1} ({c} classes); found "
            f"{(int(y.min()), int(y.max())) if y.size else 'none'} as (min, max)",
            "number the classes 0..C-1 (and give class_names for all C)")
  counts = np.bincount(y_train, minlength=c)
  empty = [classes[i] for i in np.flatnonzero(counts == 0)]
  require(not empty, FIELD, f"{where}: class {(empty or [''])[0]!r} has no training images",
          "give every class training images, or leave the class out")
  extra = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y_train).tolist()))
  require(not extra, FIELD, f"{where}: the test split has class "
          f"{classes[extra[0]] if extra else ''!r} that the training split lacks",
          "give that class training images or drop its test images")


def _pixels(x: np.ndarray, key: str, path: str) -> np.ndarray:
  """uint8 NHWC from uint8 or [0, 1] floats, NHW or NHWC."""
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[..., None]
  require(x.ndim == 4 and x.shape[-1] in (1, 3), FIELD,
          f"{path}: {key} is shaped {x.shape}", "store images as [N, H, W, C] with C = 1 or "
          "3 (or [N, H, W]); transpose NCHW arrays first")
  if x.dtype == np.uint8:
    return x
  require(np.issubdtype(x.dtype, np.floating) and x.size and 0 <= x.min() and x.max() <= 1,
          FIELD, f"{path}: {key} is {x.dtype} outside [0, 1]",
          "store uint8 pixels (0..255) or floats in [0, 1]")
  return np.round(x * 255).astype(np.uint8)


def load_npz(path: str) -> dict:
  require(bool(path) and os.path.isfile(path), FIELD, f"{path!r} is not a file",
          "set data.data_dir to your .npz (x_train, y_train, x_test, y_test)")
  try:
    f = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ConfigError(FIELD, f"{path} is not a readable .npz ({e})",
                      "write it with numpy.savez(path, x_train=..., y_train=..., "
                      "x_test=..., y_test=...)") from e
  with f:
    missing = [k for k in NPZ_KEYS if k not in f.files]
    require(not missing, FIELD, f"{path} lacks {', '.join(missing)}",
            f"store {', '.join(NPZ_KEYS)} (and optionally class_names)")
    out = {k: _pixels(f[k], k, path) for k in ("x_train", "x_test")}
    for k in ("y_train", "y_test"):
      y = np.asarray(f[k])
      require(np.issubdtype(y.dtype, np.integer) and y.ndim == 1, FIELD,
              f"{path}: {k} is {y.dtype} shaped {y.shape}", "store one integer class id "
              "per image")
      out[k] = y.astype(np.int32)
    names = [str(n) for n in f["class_names"]] if "class_names" in f.files else None
  for split in ("train", "test"):
    require(len(out[f"x_{split}"]) == len(out[f"y_{split}"]), FIELD,
            f"{path}: {len(out[f'x_{split}'])} {split} images, {len(out[f'y_{split}'])} "
            "labels", "give one label per image")
  require(out["x_train"].shape[1:] == out["x_test"].shape[1:], FIELD,
          f"{path}: train images {out['x_train'].shape[1:]}, test {out['x_test'].shape[1:]}",
          "give both splits one image shape")
  top = int(max(out["y_train"].max(initial=-1), out["y_test"].max(initial=-1)))
  classes = tuple(names) if names else tuple(str(i) for i in range(top + 1))
  check_split_labels(out["y_train"], out["y_test"], classes, path)
  out["classes"] = classes
  return out


# --------------------------------------------------------------------- CIFAR binaries
CIFAR = {   # name -> (label bytes, label byte used, train files, test file, names file)
    "cifar10": (1, 0, [f"data_batch_{i}.bin" for i in range(1, 6)], "test_batch.bin",
                "batches.meta.txt"),
    "cifar100": (2, 1, ["train.bin"], "test.bin", "fine_label_names.txt"),
}


def _cifar_files(name: str, data_dir: str) -> dict[str, bytes]:
  """{file name: bytes} of the binary version, from the archive or a folder."""
  _, _, train, test, names = CIFAR[name]
  wanted = set(train) | {test, names}
  found = {}
  if os.path.isfile(data_dir):
    try:
      with tarfile.open(data_dir) as tar:
        for member in tar.getmembers():
          base = os.path.basename(member.name)
          if member.isfile() and base in wanted:
            found[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
      raise ConfigError(FIELD, f"{data_dir} is not a readable tar archive ({e})",
                        f"give the official {name} binary archive or the folder it "
                        "unpacks to") from e
  elif os.path.isdir(data_dir):
    for root, _, files in os.walk(data_dir):
      for base in set(files) & wanted:
        with open(os.path.join(root, base), "rb") as f:
          found[base] = f.read()
  missing = sorted(wanted - set(found) - {names})
  require(not missing, FIELD, f"{data_dir} lacks {', '.join(missing)} ({name}'s binary "
          "version)", f"give the official binary archive ({name.replace('cifar', 'cifar-')}"
          "-binary.tar.gz) or the folder it unpacks to; the python (pickle) version is not "
          "read")
  return found


def _records(data: bytes, name: str, file: str) -> tuple[np.ndarray, np.ndarray]:
  label_bytes, which, *_ = CIFAR[name]
  size = label_bytes + 3 * 32 * 32
  require(len(data) % size == 0 and data, FIELD,
          f"{file} is {len(data)} bytes, not whole {size}-byte {name} records",
          "the file is damaged or of the other CIFAR: download it again")
  rec = np.frombuffer(data, np.uint8).reshape(-1, size)
  images = rec[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), rec[:, which].astype(np.int32)


def load_cifar(name: str, data_dir: str) -> dict:
  require(name in CIFAR, "data.name", f"data.source='cifar' reads cifar10 or cifar100, "
          f"not {name!r}", "set data.name to cifar10 or cifar100")
  require(bool(data_dir) and os.path.exists(data_dir), FIELD,
          f"{data_dir!r} does not exist", f"set data.data_dir to the {name} binary archive "
          "or its folder")
  _, _, train, test, names = CIFAR[name]
  files = _cifar_files(name, data_dir)
  parts = [_records(files[f], name, f) for f in train]
  x_test, y_test = _records(files[test], name, test)
  y_train = np.concatenate([y for _, y in parts])
  count = 10 if name == "cifar10" else 100
  classes = tuple(str(i) for i in range(count))
  if names in files:
    listed = [line.strip() for line in io.StringIO(files[names].decode()) if line.strip()]
    classes = tuple(listed[:count]) if len(listed) >= count else classes
  check_split_labels(y_train, y_test, classes, data_dir)
  return {"x_train": np.concatenate([x for x, _ in parts]), "y_train": y_train,
          "x_test": x_test, "y_test": y_test, "classes": classes}
