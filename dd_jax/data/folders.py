"""Image folders on disk: one's own data, and datasets tfds cannot download (Tiny
ImageNet).

Two layouts, told apart by what is there:
  tiny-imagenet-200:  wnids.txt, train/<wnid>/images/*.JPEG,
                      val/images/*.JPEG with val/val_annotations.txt (file, wnid, ...)
  class folders:      train/<class>/*.{png,jpg,jpeg,bmp}, and test/ or val/ alike
Classes are numbered in wnids.txt order, else in sorted folder-name order. Images are
decoded to uint8: one channel when every image is greyscale, else RGB (grey ones
expanded). With `image_size`, each is resized (shorter side, then a centred square crop);
without, all must share one size. A file that cannot be read, an empty class folder, a
test class the training split lacks are one line naming the file or folder.
"""
from __future__ import annotations

import os

import numpy as np

from dd_jax.errors import ConfigError, require

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def resize_center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Shorter side to `size`, then a centred size x size crop (torchvision's pair)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  scale = size / min(h, w)
  squeeze = image.ndim == 3 and image.shape[-1] == 1
  img = Image.fromarray(image[..., 0] if squeeze else image).resize(
      (max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
  arr = np.asarray(img)
  top = (arr.shape[0] - size) // 2
  left = (arr.shape[1] - size) // 2
  arr = arr[top: top + size, left: left + size]
  return arr if arr.ndim == 3 else arr[..., None]


def _decode(paths: list[str], image_size: int | None = None) -> np.ndarray:
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  grey, images = [], []
  for p in paths:
    try:
      with Image.open(p) as img:
        grey.append(img.mode in ("L", "LA", "1", "I", "I;16", "F"))
        images.append(np.asarray(img.convert("L" if grey[-1] else "RGB"), np.uint8))
    except (OSError, UnidentifiedImageError) as e:
      raise ConfigError("data.data_dir", f"cannot read {p} ({type(e).__name__})",
                        "replace or delete the file") from e
  all_grey = bool(images) and all(grey)
  images = [im[..., None] if all_grey else np.repeat(im[..., None], 3, -1) if g else im
            for g, im in zip(grey, images)]
  if image_size:
    images = [im if im.shape[:2] == (image_size, image_size)
              else resize_center_crop(im, image_size) for im in images]
  else:
    odd = next((i for i, im in enumerate(images) if im.shape != images[0].shape), None)
    require(odd is None, "data.data_dir",
            f"{paths[odd or 0]} is {images[odd or 0].shape[:2]} px, {paths[0]} is "
            f"{images[0].shape[:2] if images else ''} px",
            "set data.image_size to resize every image to one size")
  return (np.stack(images) if images else
          np.zeros((0, 1, 1, 1 if all_grey else 3), np.uint8))


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
    require(bool(found), "data.data_dir", f"class folder {folder} holds no images",
            f"add images ({', '.join(IMAGE_EXTENSIONS)}) or remove the folder")
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


def load_folder(data_dir: str, image_size: int | None = None) -> dict[str, np.ndarray]:
  """x_train, y_train, x_test, y_test (uint8 NHWC, int32) and class names from a folder
  (resized to `image_size` when given)."""
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
  if not os.path.exists(os.path.join(test_dir, "val_annotations.txt")):
    unknown = sorted(d for d in os.listdir(test_dir)
                     if os.path.isdir(os.path.join(test_dir, d)) and d not in classes)
    first = unknown[0] if unknown else ""
    require(not unknown, "data.data_dir", f"{os.path.join(test_dir, first)} is a test "
            "class the training split lacks", f"add {os.path.join(train_dir, first)} with "
            "training images, or remove the test folder")
  out = {}
  for split, folder in (("train", train_dir), ("test", test_dir)):
    if os.path.exists(os.path.join(folder, "val_annotations.txt")):
      paths, labels = _annotated(folder, classes)
    else:
      paths, labels = _class_folders(folder, classes)
    require(bool(paths), "data.data_dir", f"no images found under {folder}",
            f"put images ({', '.join(IMAGE_EXTENSIONS)}) in per-class folders")
    out[f"x_{split}"] = _decode(paths, image_size)
    out[f"y_{split}"] = np.asarray(labels, np.int32)
  if out["x_train"].shape[-1] != out["x_test"].shape[-1]:   # one split grey: both RGB
    out["x_train"], out["x_test"] = (np.repeat(x, 3, -1) if x.shape[-1] == 1 else x
                                     for x in (out["x_train"], out["x_test"]))
  require(out["x_train"].shape[1:] == out["x_test"].shape[1:], "data.data_dir",
          f"train images are {out['x_train'].shape[1:3]} px, test images "
          f"{out['x_test'].shape[1:3]} px", "set data.image_size to resize both to one size")
  out["classes"] = tuple(classes)
  return out
