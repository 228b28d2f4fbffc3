"""From a config's `data` section to preprocessed train/test arrays."""
from __future__ import annotations

import dataclasses

import numpy as np

from dd_jax.data import indexing, preprocess, sources
from dd_jax.errors import require


@dataclasses.dataclass(frozen=True)
class Prepared:
  dataset: sources.Dataset          # raw uint8 data (after train_per_class/test_limit)
  pre: preprocess.Preprocessor
  x_train: np.ndarray               # [N, H, W, C] float32, network input
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  # `data.holdout_per_class` training images per class kept out of x_train (selection
  # on held-out training data, never the test set; H-PD's hpd.select="accuracy")
  x_holdout: np.ndarray | None = None
  y_holdout: np.ndarray | None = None

  @property
  def num_classes(self) -> int:
    return self.dataset.num_classes

  def describe(self) -> dict:
    """Identity of data + preprocessing, for expert and synthetic-set metadata."""
    return {"dataset": self.dataset.name,
            "fingerprint": self.dataset.fingerprint,
            "image_shape": list(self.dataset.image_shape),
            "num_classes": self.num_classes,
            "train_size": int(len(self.y_train)),
            "preprocessing": self.pre.describe(),
            **({"holdout_size": int(len(self.y_holdout))}
               if self.y_holdout is not None else {})}


def subset(ds: sources.Dataset, train_per_class: int, test_limit: int,
           seed: int = 0) -> sources.Dataset:
  """Keeps `train_per_class` images of each class (seeded) and the first `test_limit`."""
  x_tr, y_tr, x_te, y_te = ds.x_train, ds.y_train, ds.x_test, ds.y_test
  if train_per_class:
    idx = np.sort(indexing.sample_per_class(y_tr, ds.num_classes, train_per_class, seed,
                                            field="data.train_per_class"))
    x_tr, y_tr = x_tr[idx], y_tr[idx]
  if test_limit:
    x_te, y_te = x_te[:test_limit], y_te[:test_limit]
  return dataclasses.replace(ds, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)


def split_holdout(ds: sources.Dataset, per_class: int, seed: int = 1
                  ) -> tuple[sources.Dataset, np.ndarray | None, np.ndarray | None]:
  """Takes `per_class` training images of each class (seeded) out of the training split;
  (the rest, their images, their labels), or (ds, None, None) for 0."""
  if not per_class:
    return ds, None, None
  fewest = int(np.bincount(ds.y_train, minlength=ds.num_classes).min())
  # (more than a class has: sample_per_class says so)
  require(per_class != fewest, "data.holdout_per_class",
          f"holds out {per_class} images per class, all {fewest} of the smallest class's: "
          "none would be left to train on", f"set data.holdout_per_class below {fewest}")
  held = np.sort(indexing.sample_per_class(ds.y_train, ds.num_classes, per_class, seed,
                                           field="data.holdout_per_class"))
  keep = np.setdiff1d(np.arange(len(ds.y_train)), held)
  return (dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep]),
          ds.x_train[held], ds.y_train[held])


def prepare(data_config, dataset: sources.Dataset | None = None) -> Prepared:
  """Loads (or takes) the dataset, subsets it, holds out `data.holdout_per_class`
  training images per class, fits and applies preprocessing (fitted on the rest)."""
  ds = dataset if dataset is not None else sources.load_dataset(data_config)
  ds = subset(ds, data_config.get("train_per_class", 0), data_config.get("test_limit", 0))
  ds, x_held, y_held = split_holdout(ds, data_config.get("holdout_per_class", 0))
  pre = preprocess.fit(ds.x_train, zca=data_config.get("zca", False),
                       zca_epsilon=data_config.get("zca_epsilon", 0.1))
  return Prepared(dataset=ds, pre=pre, x_train=pre.apply(ds.x_train), y_train=ds.y_train,
                  x_test=pre.apply(ds.x_test), y_test=ds.y_test,
                  x_holdout=None if x_held is None else pre.apply(x_held),
                  y_holdout=y_held)
