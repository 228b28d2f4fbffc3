"""Image folders on disk, for datasets tfds cannot download (Tiny ImageNet).

Two layouts, told apart by what is there:
  tiny-imagenet-200:  wnids.txt, train/<wnid>/images/*.JPEG,
                      val/images/*.JPEG with val/val_annotations.txt (file, wnid, ...)
  class folders:      train/<class>/*.{png,jpg,jpeg}, and test/ or val/ alike
Classes are numbered in wnids.txt order, else in sorted folder-name order. Images are
decoded to RGB uint8 (grey ones are expanded) and must all share one size.
"""
from __future__ import annotations

import os

import numpy as np

from dd_jax.errors import require

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def _decode(paths: list[str]) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = []
  for p in paths:
    with Image.open(p) as img:
      images.append(np.asarray(img.convert("RGB"), np.uint8))
  shapes = {im.shape for im in images}
  require(len(shapes) <= 1, "data.data_dir", f"images of several sizes {sorted(shapes)}",
          "resize the images to one size first")
  return np.stack(images) if images else np.zeros((0, 1, 1, 3), np.uint8)


def _images_in(folder: str) -> list[str]:
  return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                if f.lower().endswith(IMAGE_EXTENSIONS))


def _class_folders(split_dir: str, classes: list[str]) -> tuple[list[str], list[int]]:
  paths, labels = [], []
  for c, name in enumerate(classes):
    folder = os.path.join(split_dir, name)
    if os.path.isdir(os.path.join(folder, "images")):   # tiny-imagenet train/<wnid>/images
      folder = os.path.join(folder, "images")
    if not os.path.isdir(folder):
      continue
    found = _images_in(folder)
    paths += found
    labels += [c] * len(found)
  return paths, labels


def _annotated(split_dir: str, classes: list[str]) -> tuple[list[str], list[int]]:
  """tiny-imagenet's val/: one folder of images, labels in val_annotations.txt."""
  index = {name: c for c, name in enumerate(classes)}
  paths, labels = [], []
  with open(os.path.join(split_dir, "val_annotations.txt")) as f:
    for line in f:
      parts = line.split("\t")
      if len(parts) >= 2 and parts[1] in index:
        paths.append(os.path.join(split_dir, "images", parts[0]))
        labels.append(index[parts[1]])
  return paths, labels


def load_folder(data_dir: str) -> dict[str, np.ndarray]:
  """x_train, y_train, x_test, y_test (uint8 NHWC, int32) and class names from a folder."""
  require(bool(data_dir) and os.path.isdir(data_dir), "data.data_dir",
          f"{data_dir!r} is not a folder",
          "set data.data_dir to the dataset folder (e.g. tiny-imagenet-200)")
  train_dir = os.path.join(data_dir, "train")
  require(os.path.isdir(train_dir), "data.data_dir", f"{data_dir} has no train/ folder",
          "point data.data_dir at the folder holding train/ and val/ (or test/)")
  wnids = os.path.join(data_dir, "wnids.txt")
  if os.path.exists(wnids):
    with open(wnids) as f:
      classes = [line.strip() for line in f if line.strip()]
  else:
    classes = sorted(d for d in os.listdir(train_dir)
                     if os.path.isdir(os.path.join(train_dir, d)))
  test_dir = next((os.path.join(data_dir, s) for s in ("test", "val")
                   if os.path.isdir(os.path.join(data_dir, s))), None)
  require(test_dir is not None, "data.data_dir", f"{data_dir} has no test/ or val/ folder",
          "add the held-out split as test/ or val/")
  out = {}
  for split, folder in (("train", train_dir), ("test", test_dir)):
    if os.path.exists(os.path.join(folder, "val_annotations.txt")):
      paths, labels = _annotated(folder, classes)
    else:
      paths, labels = _class_folders(folder, classes)
    require(bool(paths), "data.data_dir", f"no images found under {folder}",
            f"put images ({', '.join(IMAGE_EXTENSIONS)}) in per-class folders")
    out[f"x_{split}"] = _decode(paths)
    out[f"y_{split}"] = np.asarray(labels, np.int32)
  out["classes"] = tuple(classes)
  return out
