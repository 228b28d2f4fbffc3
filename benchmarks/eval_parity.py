"""Evaluation parity: dd_jax's protocol against the official MTT `evaluate_synset`, run
from a fetched checkout (its utils.py and networks.py, unchanged), on the same sets, the
same preprocessed Fashion-MNIST test set and the same lr; each difference measured alone.

Arms (5 nets each by default; net k of an arm is seeded with k):
  official       MTT's utils.evaluate_synset on utils.get_network("ConvNet", 1, 10, (28, 28))
                 (its first conv pads 28 px to 32), DSA with its ParamDiffAug, batch 256
  official_pad1  the same official loop on a ConvNet whose first conv pads 1 (28 px maps,
                 dd_jax's net before 2026-12; benchmarks/torch_port)
  ours           dd_jax's default: eval.protocol "mtt", model.one_channel_padding 3
  ours_legacy    dd_jax before 2026-12: protocol "legacy" (1000 epochs, x0.1 from 500,
                 momentum kept) and padding 1
  ours_pad1      protocol "mtt" with padding 1: the net alone as before
  ours_sched     protocol "legacy" with padding 3: the schedule alone as before

Sets: `random:IPC:SEED` (a random real subset, lr --lr) or the path of a synset.npz (its
learned lr). Results go to <out>/results.json as each (set, arm) finishes: a rerun resumes;
<out>/table.md is written from them (the README's table is that file).

  git clone https://github.com/GeorgeCazenavette/mtt-distillation /tmp/mtt-distillation
  python benchmarks/eval_parity.py --official=/tmp/mtt-distillation --out=/tmp/parity \
      --sets=random:1:0,random:1:1,random:10:0 --arms=official,ours
  python benchmarks/eval_parity.py --smoke [--official=/tmp/mtt-distillation]
      (every arm, 1 net x 2 epochs, on tiny data; the official arms only with a checkout)
The official utils.py imports kornia and torchvision for code this does not call; when
they are missing, empty stand-ins are installed for the import (nothing of them is used).
With today's torch, DSA's one-channel batches come with channels-last strides that break
the official forward's `.view`: a forward pre-hook gives the net standard strides.
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import common

ARMS = ("official", "official_pad1", "ours", "ours_legacy", "ours_pad1", "ours_sched")
# dd_jax arms: (eval.protocol, model.one_channel_padding)
OURS = {"ours": ("mtt", 3), "ours_legacy": ("legacy", 1), "ours_pad1": ("mtt", 1),
        "ours_sched": ("legacy", 3)}


_PREPARED = {}
# --smoke: the folder of the tiny data (common.smoke_config); "" for Fashion-MNIST.
_SMOKE_ROOT = []


def base_config():
  """configs/fashion_mnist_mtt.py at IPC 1 (on the tiny data in a --smoke run)."""
  from configs import fashion_mnist_mtt
  config = fashion_mnist_mtt.get_config("ipc=1")
  if _SMOKE_ROOT:   # the official net's width: the arms stay comparable at this size
    config = common.smoke_config(config, _SMOKE_ROOT[0])
    config.model.width = 128
  return config


def load_data(train_per_class: int = 0):
  """Fashion-MNIST preprocessed as a run with `train_per_class` (its mean/std); the full
  test set."""
  if train_per_class not in _PREPARED:
    from dd_jax.data import pipeline
    data = base_config().data
    data.train_per_class = train_per_class
    _PREPARED[train_per_class] = pipeline.prepare(data)
  return _PREPARED[train_per_class]


def load_set(spec: str, lr: float):
  """(images NHWC, int labels, lr, prepared data) of a set spec; a stored set's test
  images are preprocessed as its run's."""
  from dd_jax.data import indexing
  if spec.startswith("random:"):
    _, ipc, seed = spec.split(":")
    prepared = load_data()
    idx = indexing.sample_per_class(prepared.y_train, prepared.num_classes, int(ipc),
                                    seed=int(seed), field="--sets")
    return prepared.x_train[idx], prepared.y_train[idx].astype(np.int64), lr, prepared
  with np.load(spec) as f:
    labels, meta = f["labels"], json.loads(str(f["meta"]))
    prepared = load_data(meta["config"]["data"].get("train_per_class", 0))
    # soft labels (DATM/PAD: [N, C] logits) stay float
    labels = labels.astype(np.float32 if labels.ndim == 2 else np.int64)
    return f["images"].astype(np.float32), labels, float(f["lr"]), prepared


def import_official(path: str):
  """The official utils module (kornia/torchvision stood in for when missing): MTT's
  utils.py, or in a PAD/DATM checkout its utils/utils_baseline.py (the same loop, with a
  train criterion for soft labels)."""
  for name in ("kornia", "torchvision"):
    try:
      __import__(name)
    except ImportError:
      stub = types.ModuleType(name)
      stub.datasets = stub.transforms = types.ModuleType(name + ".stub")
      sys.modules[name] = stub
  sys.path.insert(0, path)
  if os.path.exists(os.path.join(path, "utils", "utils_baseline.py")):
    from utils import utils_baseline   # PAD's (DATM's) evaluation
    return utils_baseline
  import utils   # the official utils.py
  return utils


def soft_cross_entropy(logits, target):
  """DATM/PAD's SoftCrossEntropy: -sum(log_softmax(x) * softmax(y)) / batch."""
  import torch.nn.functional as F
  return (-F.log_softmax(logits, dim=1) * F.softmax(target, dim=1)).sum() / logits.shape[0]


@contextlib.contextmanager
def seeded_get_network(utils, seed: int):
  """get_network seeds torch with the clock; seed it with `seed` instead."""
  original = utils.torch.random.manual_seed
  utils.torch.random.manual_seed = lambda _: original(seed)
  try:
    yield
  finally:
    utils.torch.random.manual_seed = original


def run_official(utils, arm, images, labels, lr, prepared, nets, epochs, batch=256):
  import inspect
  import torch
  from benchmarks.torch_port import networks
  args = types.SimpleNamespace(
      device="cpu", lr_net=lr, epoch_eval_train=epochs, batch_train=batch, dsa=True,
      dsa_strategy="color_crop_cutout_flip_scale_rotate", dsa_param=utils.ParamDiffAug(),
      dataset="FashionMNIST", dc_aug_param=None, parall_eva=True)
  soft = labels.ndim == 2
  takes_criterion = "train_criterion" in inspect.signature(utils.evaluate_synset).parameters
  if soft and not takes_criterion:
    sys.exit("soft labels: MTT's evaluate_synset takes hard ones; give --official a "
             "PAD (DATM) checkout, whose utils/utils_baseline.py trains on soft labels")
  extra = {"train_criterion": soft_cross_entropy} if soft else {}
  test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
      torch.as_tensor(prepared.x_test.transpose(0, 3, 1, 2)),
      torch.as_tensor(prepared.y_test.astype(np.int64))), batch_size=256, shuffle=False)
  x = torch.as_tensor(images.transpose(0, 3, 1, 2).copy())
  y = torch.as_tensor(labels)
  accs = []
  for k in range(nets):
    with seeded_get_network(utils, k):
      if arm == "official":
        net = utils.get_network("ConvNet", 1, prepared.num_classes, (28, 28))
      else:
        utils.torch.random.manual_seed(k)
        net = networks.ConvNet(1, prepared.num_classes, im_size=(28, 28),
                               one_channel_padding=1)
    # DSA hands one-channel batches whose strides this torch reads as channels-last;
    # the official forward's .view() then fails. Standard strides, same values:
    net.register_forward_pre_hook(
        lambda _, inputs: (inputs[0].clone(memory_format=torch.contiguous_format),))
    with contextlib.redirect_stdout(sys.stderr):
      _, _, acc = utils.evaluate_synset(k, net, x, y, test, args, **extra)
    accs.append(float(acc))
  return accs


def run_ours(arm, images, labels, lr, prepared, nets, epochs, batch=256):
  from dd_jax.evaluate import protocol as protocol_lib
  config = base_config()
  proto, padding = OURS[arm]
  config.model.one_channel_padding = padding
  accs = []
  for k in range(nets):   # net k from seed k, as the official arms
    r = protocol_lib.evaluate_synset(
        images, labels if labels.ndim == 2 else labels.astype(np.int32), prepared.x_test,
        prepared.y_test, num_classes=prepared.num_classes, model_config=config.model, lr=lr,
        epochs=epochs, batch_size=batch, num_nets=1, seed=k, protocol=proto)
    accs.append(float(r.accuracies[0]))
  return accs


def table(results: dict, sets: list[str], arms: list[str]) -> str:
  head = "| set | " + " | ".join(arms) + " | ours - official |"
  rows = [head, "|" + " --- |" * (len(arms) + 2)]
  for s in sets:
    cells, means = [], {}
    for a in arms:
      accs = results.get(s, {}).get(a)
      if accs is None:
        cells.append("-")
        continue
      means[a] = 100 * np.mean(accs)
      cells.append(f"{means[a]:.2f} ± {100 * np.std(accs):.2f}")
    gap = (f"{means['ours'] - means['official']:+.2f}"
           if "ours" in means and "official" in means else "-")
    rows.append(f"| {s} | " + " | ".join(cells) + f" | {gap} |")
  return "\n".join(rows)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--official", default="",
                 help="a checkout of mtt-distillation (or of PAD, for soft-label sets)")
  p.add_argument("--out", default="", help="results folder (resumable)")
  p.add_argument("--sets", default="random:1:0,random:1:1,random:1:2,random:10:0")
  p.add_argument("--arms", default=",".join(ARMS))
  p.add_argument("--nets", type=int, default=5)
  p.add_argument("--epochs", type=int, default=1000)
  p.add_argument("--lr", type=float, default=0.01, help="lr of random real sets")
  p.add_argument("--batch", type=int, default=256,
                 help="training batch (batch_train; PAD's YAMLs: 128)")
  p.add_argument("--torch-threads", type=int, default=1,
                 help="PyTorch's threads (1: least slowed by another busy process)")
  common.add_smoke(p)
  a = p.parse_args()
  if a.smoke:   # one random set of the tiny data, 1 net x 2 epochs per arm
    with tempfile.TemporaryDirectory(prefix="eval_parity_smoke_") as root:
      _SMOKE_ROOT.append(root)
      a.out, a.sets, a.nets, a.epochs = root, "random:1:0", 1, 2
      if not a.official:
        print("official arms skipped: no --official checkout given", flush=True)
        a.arms = ",".join(x for x in a.arms.split(",") if not x.startswith("official"))
      return study(a)
  if not a.official or not a.out:
    p.error("--official and --out are required")
  study(a)


def study(a: argparse.Namespace) -> None:
  sets, arms = a.sets.split(","), a.arms.split(",")
  unknown = [x for x in arms if x not in ARMS]
  if unknown:
    sys.exit(f"--arms: unknown {unknown}; use some of {','.join(ARMS)}")
  print(f"machine: {common.machine()}", flush=True)
  if any(x.startswith("official") for x in arms):
    import torch
    torch.set_num_threads(a.torch_threads)
  os.makedirs(a.out, exist_ok=True)
  path = os.path.join(a.out, "results.json")
  results = json.load(open(path)) if os.path.exists(path) else {}
  utils = None
  suffix = f"/batch={a.batch}" if a.batch != 256 else ""
  for s in sets:
    images, labels, lr, prepared = load_set(s, a.lr)
    for arm in arms:
      key = f"{arm}/nets={a.nets}/epochs={a.epochs}{suffix}"
      if key in results.get(s, {}):
        continue
      t = time.perf_counter()
      if arm.startswith("official"):
        utils = utils or import_official(a.official)
        accs = run_official(utils, arm, images, labels, lr, prepared, a.nets, a.epochs,
                            a.batch)
      else:
        accs = run_ours(arm, images, labels, lr, prepared, a.nets, a.epochs, a.batch)
      results.setdefault(s, {})[key] = accs
      with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
      os.replace(path + ".tmp", path)
      print(f"{s} {arm}: {100 * np.mean(accs):.2f} ± {100 * np.std(accs):.2f} "
            f"({', '.join(f'{100 * x:.2f}' for x in accs)}) lr {lr:.4g}, "
            f"{time.perf_counter() - t:.0f}s", flush=True)
  view = {s: {k.split("/")[0]: v for k, v in r.items()
              if k.endswith(f"/nets={a.nets}/epochs={a.epochs}{suffix}")}
          for s, r in results.items()}
  md = (f"Evaluation parity, Fashion-MNIST, ConvNet, {a.nets} nets x {a.epochs} epochs "
        f"(benchmarks/eval_parity.py; mean ± std over nets, %)\n\n"
        + table(view, sets, [x for x in ARMS if any(x in view.get(s, {}) for s in sets)]))
  with open(os.path.join(a.out, "table.md"), "w") as f:
    f.write(md + "\n")
  print(md)


if __name__ == "__main__":
  main()
