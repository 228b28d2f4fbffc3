"""Evaluation time, IPC10 (100 images), 5 ConvNet-3 nets: our vmapped protocol against a
PyTorch port of the official `evaluate_synset` run for 5 nets in sequence.

Both run --epochs epochs (default 100) and the figures are extrapolated linearly to 1000
epochs (an epoch is one batch of 100 images here, so time is linear in epochs).
python benchmarks/evaluation.py [--epochs 100] [--nets 5] [--smoke]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import common
from benchmarks.common import machine
from dd_jax.evaluate import evaluate_synset


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--epochs", type=int, default=100)
  p.add_argument("--nets", type=int, default=5)
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:
    args.epochs, args.nets = 2, 1
  rng = np.random.default_rng(0)
  print(f"machine: {machine()}")
  for shape in [(8, 8, 1)] if args.smoke else [(28, 28, 1), (32, 32, 3)]:
    x = rng.normal(size=(100,) + shape).astype(np.float32)
    y = np.repeat(np.arange(10), 10).astype(np.int32)
    xt = rng.normal(size=(500,) + shape).astype(np.float32)
    yt = rng.integers(0, 10, 500).astype(np.int32)
    t = time.perf_counter()
    evaluate_synset(x, y, xt, yt, num_classes=10, epochs=args.epochs, num_nets=args.nets,
                    chunk_epochs=args.epochs)   # compiles; later calls reuse it
    first = time.perf_counter() - t
    t = time.perf_counter()
    evaluate_synset(x, y, xt, yt, num_classes=10, epochs=args.epochs, num_nets=args.nets,
                    chunk_epochs=args.epochs)
    ours = time.perf_counter() - t
    line = f"{shape}: ours {ours:.1f}s for {args.nets} nets x {args.epochs} epochs " \
           f"(-> {ours * 1000 / args.epochs:.0f}s at 1000; compile {first - ours:.0f}s once)"
    if common.torch_installed():
      import torch
      from benchmarks.torch_port import loops, networks
      torch.manual_seed(0)
      test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
          torch.as_tensor(xt.transpose(0, 3, 1, 2)), torch.as_tensor(yt).long()),
          batch_size=256)
      total = 0.0
      for _ in range(args.nets):
        net = networks.ConvNet(shape[2], 10, im_size=shape[:2])
        t = time.perf_counter()
        loops.evaluate_synset(net, torch.as_tensor(x.transpose(0, 3, 1, 2)),
                              torch.as_tensor(y).long(), test, epochs=args.epochs - 1)
        total += time.perf_counter() - t
      line += f"   pytorch {total:.1f}s (-> {total * 1000 / args.epochs:.0f}s)   " \
              f"speed-up {total / ours:.2f}x"
    else:
      line += "   pytorch not installed"
    print(line, flush=True)


if __name__ == "__main__":
  main()
