"""The official MTT / DATM / PAD / AST files to dd_jax's, and back.

  python -m dd_jax.interop import-experts --src=DIR --config=FILE[:VARIANT] --dst=DIR
  python -m dd_jax.interop export-experts --src=DIR --dst=DIR
  python -m dd_jax.interop import-synset SRC_DIR --config=FILE[:VARIANT] --dst=FILE.npz
  python -m dd_jax.interop export-synset SRC.npz --dst=DIR [--format=official|ddranking]

Official expert buffers (`replay_buffer_<n>.pt`, buffer.py) are lists of trajectories,
each a list of per-epoch lists of parameter tensors in `net.parameters()` order; they
become Orbax expert folders whose experts.json is the config's (data, preprocessing incl.
ZCA, architecture, optimiser), every tensor's shape checked against the config's
network (`TorchLayout`). Files are read without torch and without running pickled code
(dd_jax/torch_pickle.py: a file that needs anything but tensors, lists and dicts is
refused), one buffer file at a time, and an interrupted import resumes.

Official synthetic sets (`images_best.pt` [N, C, H, W] in the network's input space, ZCA
applied when the run used it; `labels_best.pt` hard [N] or soft [N, classes];
`lr_best.pt` when DATM/PAD saved it) become a synset.npz that `python -m
dd_jax.evaluate --config.eval.source=...` evaluates; dd_jax's preprocessing (the
training set's mean and std, ZCA fitted on it) is the official one, so no conversion of
values is needed. Writing the official formats needs torch (the `torch` extra).
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dd_jax import models, training
from dd_jax.data import pipeline
from dd_jax.distill import export
from dd_jax.errors import ConfigError, require
from dd_jax.experts import store
from dd_jax.experts import train as expert_train
from dd_jax.metadata import read_npz
from dd_jax.models.torch_layout import TorchLayout
from dd_jax import torch_pickle

BUFFER = re.compile(r"replay_buffer_(\d+)\.pt$")


def load_config(spec: str):
  """A config from "configs/file.py[:variant]", as --config takes it."""
  path, _, variant = spec.partition(":")
  require(os.path.exists(path), "--config", f"{path} does not exist",
          "give a config file, e.g. configs/fashion_mnist_mtt.py:ipc=10")
  module_spec = importlib.util.spec_from_file_location("interop_config", path)
  module = importlib.util.module_from_spec(module_spec)
  root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
  sys.path.insert(0, root)   # configs import their siblings as configs.*
  try:
    module_spec.loader.exec_module(module)
    return module.get_config(variant or None)
  except ValueError as e:
    raise ConfigError("--config", str(e), "use a variant the config lists") from None
  finally:
    sys.path.remove(root)


def _need_torch(what: str):
  try:
    import torch
  except ImportError:
    raise ConfigError(what, "writes torch files and torch is not installed",
                      'pip install "dd_jax[torch]"') from None
  return torch


def buffer_files(src: str) -> list[str]:
  files = [f for f in glob.glob(os.path.join(src, "replay_buffer_*.pt")) if BUFFER.search(f)]
  require(files, "--src", f"{src} has no replay_buffer_<n>.pt files",
          "point --src at the official buffer.py's save folder")
  return sorted(files, key=lambda f: int(BUFFER.search(f).group(1)))


class _Layout:
  """The config's network as the official code lays its parameters out."""

  def __init__(self, model, image_shape):
    self.layout = TorchLayout.of(model, tuple(image_shape))
    zeros = self.layout.unflatten(jnp.zeros(self.layout.num_params))
    self.torch_shapes = [tuple(v.shape) for v in self.layout.state_dict(zeros).values()]

  def params(self, tensors, where: str):
    """Our params from one epoch's tensor list; a wrong count or shape is named."""
    require(isinstance(tensors, (list, tuple)), "--src",
            f"{where} is a {type(tensors).__name__}, not a list of tensors",
            "give buffers written by the official buffer.py")
    require(len(tensors) == len(self.torch_shapes), "--src",
            f"{where} has {len(tensors)} tensors, the config's network "
            f"{len(self.torch_shapes)}", "use the config the experts were trained with")
    for name, want, got in zip(self.layout.names, self.torch_shapes, tensors):
      require(tuple(np.shape(got)) == want, "--src",
              f"{where}: {name} expected {want}, found {tuple(np.shape(got))}",
              "use the config (architecture, width, depth, image size) of the buffers")
    flat = np.concatenate([np.asarray(t, np.float32).reshape(-1) for t in tensors])
    return self.layout.unflatten(jnp.asarray(flat))

  def tensors(self, params) -> list[np.ndarray]:
    return [np.asarray(v) for v in self.layout.state_dict(params).values()]


def import_experts(src: str, config, dst: str) -> int:
  """Official buffers -> dd_jax experts in `dst`; returns how many experts it holds."""
  files = buffer_files(src)
  prepared = pipeline.prepare(config.data)
  model = models.from_config(config.model, prepared.num_classes)
  layout = _Layout(model, prepared.x_train.shape[1:])
  store.prepare_directory(dst, expert_train.expert_spec(config, prepared))
  index = 0
  for path in files:
    trajectories = torch_pickle.load(path, "--src")
    require(isinstance(trajectories, list), "--src",
            f"{path} holds a {type(trajectories).__name__}, not a list of trajectories",
            "give buffers written by the official buffer.py")
    for trajectory in trajectories:
      where = f"{os.path.basename(path)} trajectory {index}"
      require(len(trajectory) == config.expert.epochs + 1, "expert.epochs",
              f"{where} has {len(trajectory) - 1} epochs, the config {config.expert.epochs}",
              f"set --config.expert.epochs={len(trajectory) - 1}")
      if not store.is_complete(dst, index):
        writer = store.TrajectoryWriter(dst, index)
        first = 0 if writer.latest_epoch is None else writer.latest_epoch + 1
        for epoch in range(first, len(trajectory)):
          params = layout.params(trajectory[epoch], f"{where} epoch {epoch}")
          writer.save(epoch, training.NetState(params=params, batch_stats={}, opt_state=()),
                      {"imported_from": os.path.basename(path)})
        writer.finish(imported=True)
        writer.close()
      index += 1
    del trajectories   # one buffer file in memory at a time
  return index


def _model_of(spec: dict):
  m = dict(spec["model"])
  arch = m.pop("arch")
  return models.build(arch, spec["data"]["num_classes"], **m), spec["data"]["image_shape"]


def export_experts(src: str, dst: str, per_file: int = 10) -> list[str]:
  """dd_jax experts -> replay_buffer_<n>.pt files of `per_file` trajectories each."""
  torch = _need_torch("export-experts")
  reader = store.ExpertReader(src)
  try:
    model, image_shape = _model_of(reader.spec)
    layout = _Layout(model, image_shape)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, *image_shape)),
                           train=False))["params"])
    os.makedirs(dst, exist_ok=True)
    written = []
    for n, start in enumerate(range(0, len(reader.experts), per_file)):
      trajectories = [[[torch.from_numpy(t.copy()) for t in
                        layout.tensors(reader.params(i, e, abstract))]
                       for e in range(reader.epochs + 1)]
                      for i in reader.experts[start:start + per_file]]
      path = os.path.join(dst, f"replay_buffer_{n}.pt")
      torch.save(trajectories, path + ".tmp")
      os.replace(path + ".tmp", path)
      written.append(path)
  finally:
    reader.close()
  return written


def _tensor(folder: str, name: str, required: bool = True):
  path = os.path.join(folder, name)
  if not os.path.exists(path):
    require(not required, "SRC", f"{folder} has no {name}",
            "point at the official run's save folder (images_best.pt, labels_best.pt)")
    return None
  return np.asarray(torch_pickle.load(path, "SRC"))


def import_synset(src: str, config, dst: str, lr: float | None = None) -> dict[str, str]:
  """images_best.pt / labels_best.pt / lr_best.pt -> our synset.npz (+ .json, .png)."""
  require(dst.endswith(".npz"), "--dst", f"{dst} is not a .npz path", "end it in .npz")
  prepared = pipeline.prepare(config.data)
  images = _tensor(src, "images_best.pt")
  labels = _tensor(src, "labels_best.pt")
  stored_lr = _tensor(src, "lr_best.pt", required=False)
  require(images.ndim == 4, "SRC", f"images_best.pt is {images.shape}, not [N, C, H, W]",
          "give the official images_best.pt")
  images = images.transpose(0, 2, 3, 1).astype(np.float32)
  require(images.shape[1:] == prepared.x_train.shape[1:], "--config",
          f"the images are {images.shape[1:]}, the config's data {prepared.x_train.shape[1:]}",
          "use the config of the dataset the set was distilled from")
  require(len(labels) == len(images), "SRC", f"{len(labels)} labels for {len(images)} images",
          "give the labels_best.pt saved with the images")
  labels = labels.astype(np.int32) if labels.ndim == 1 else labels.astype(np.float32)
  lr = float(stored_lr) if stored_lr is not None else (lr or config.eval.lr)
  meta = {"data": prepared.describe(), "config": {"data": config.data.to_dict()},
          "imported_from": os.path.abspath(src),
          "lr_source": "lr_best.pt" if stored_lr is not None else "given"}
  return export.save_synset(dst[:-len(".npz")], images, labels, lr, prepared.pre,
                            prepared.num_classes, meta)


def export_synset(src: str, dst: str, fmt: str = "official") -> list[str]:
  """Our synset.npz -> the official files, or DD-Ranking's (sorted by class)."""
  require(fmt in ("official", "ddranking"), "--format", f"unknown {fmt!r}",
          "use official or ddranking")
  torch = _need_torch("export-synset")
  f = read_npz(src, "SRC")
  images = np.asarray(f["images"], np.float32).transpose(0, 3, 1, 2)
  labels, lr = np.asarray(f["labels"]), float(f["lr"]) if "lr" in f else None
  if fmt == "ddranking":
    hard = labels if labels.ndim == 1 else labels.argmax(1)
    order = np.argsort(hard, kind="stable")
    images, labels = images[order], labels[order]
  names = ({"images": "images_best.pt", "labels": "labels_best.pt", "lr": "lr_best.pt"}
           if fmt == "official" else
           {"images": "images.pt", "labels": "labels.pt", "lr": "syn_lr.pt"})
  os.makedirs(dst, exist_ok=True)
  written = []
  values = {"images": torch.from_numpy(images.copy()),
            "labels": torch.from_numpy(labels.astype(np.int64 if labels.ndim == 1
                                                     else np.float32)),
            "lr": None if lr is None else torch.tensor(lr)}
  for key, name in names.items():
    if values[key] is not None:
      path = os.path.join(dst, name)
      torch.save(values[key], path)
      written.append(path)
  return written


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m dd_jax.interop", description=__doc__.split(
      "\n")[0])
  sub = p.add_subparsers(dest="command", required=True)
  a = sub.add_parser("import-experts", help="official replay buffers -> our experts")
  a.add_argument("--src", required=True)
  a.add_argument("--config", required=True)
  a.add_argument("--dst", required=True)
  b = sub.add_parser("export-experts", help="our experts -> official replay buffers")
  b.add_argument("--src", required=True)
  b.add_argument("--dst", required=True)
  c = sub.add_parser("import-synset", help="official *_best.pt -> our synset.npz")
  c.add_argument("src")
  c.add_argument("--config", required=True)
  c.add_argument("--dst", required=True)
  c.add_argument("--lr", type=float, default=None, help="when the folder has no lr_best.pt")
  d = sub.add_parser("export-synset", help="our synset.npz -> official or DD-Ranking files")
  d.add_argument("src")
  d.add_argument("--dst", required=True)
  d.add_argument("--format", default="official")
  args = p.parse_args(argv)
  try:
    if args.command == "import-experts":
      n = import_experts(args.src, load_config(args.config), args.dst)
      print(f"{args.dst}: {n} experts")
    elif args.command == "export-experts":
      print("\n".join(export_experts(args.src, args.dst)))
    elif args.command == "import-synset":
      print(import_synset(args.src, load_config(args.config), args.dst, args.lr)["npz"])
    else:
      print("\n".join(export_synset(args.src, args.dst, args.format)))
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
