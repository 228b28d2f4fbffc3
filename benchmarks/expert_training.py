"""Expert-training throughput (images/s): our jitted epoch against a PyTorch port of the
official training loop, ConvNet-3 width 128, batch 256, DSA on, same shapes, CPU.

python benchmarks/expert_training.py [--batches 8] [--smoke]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp

from benchmarks import common
from benchmarks.common import machine
from dd_jax import models, training


def ours(shape, n, seconds_out):
  model = models.build("ConvNet", 10)
  tx = training.direction("sgd")
  epoch = jax.jit(training.make_train_epoch(model, tx, 256, "color_crop_cutout_flip_scale_rotate"))
  x = jax.random.normal(jax.random.PRNGKey(0), (n,) + shape)
  y = jax.random.randint(jax.random.PRNGKey(1), (n,), 0, 10)
  state = training.init_state(model, jax.random.PRNGKey(2), x[:1], tx)
  t = time.perf_counter()
  state, loss, _ = epoch(state, jnp.float32(0.01), x, y, jax.random.PRNGKey(3))
  jax.block_until_ready(loss)
  seconds_out["compile+first"] = time.perf_counter() - t
  t = time.perf_counter()
  state, loss, _ = epoch(state, jnp.float32(0.01), x, y, jax.random.PRNGKey(4))
  jax.block_until_ready(loss)
  return n / (time.perf_counter() - t)


def theirs(shape, n):
  import torch
  from benchmarks.torch_port import loops, networks
  torch.manual_seed(0)
  net = networks.ConvNet(shape[2], 10, im_size=shape[:2])
  opt = torch.optim.SGD(net.parameters(), lr=0.01)
  x = torch.randn(n, shape[2], shape[0], shape[1])
  y = torch.randint(0, 10, (n,))
  loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=256,
                                       shuffle=True)
  loops.epoch(net, [next(iter(loader))], opt)   # warm-up
  t = time.perf_counter()
  loops.epoch(net, loader, opt)
  return n / (time.perf_counter() - t)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batches", type=int, default=8)
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:
    args.batches = 1
  n = 256 * args.batches
  print(f"machine: {machine()}")
  print(f"jax {jax.__version__} ({jax.default_backend()}), conv_impl auto")
  for shape in [(8, 8, 1)] if args.smoke else [(28, 28, 1), (32, 32, 3)]:
    extra = {}
    j = ours(shape, n, extra)
    if common.torch_installed():
      import torch
      t = theirs(shape, n)
      torch_part = f"pytorch {torch.__version__} {t:7.1f} img/s   ours/pytorch {j / t:.2f}x"
    else:
      torch_part = "pytorch not installed (pip install -e '.[torch]')"
    print(f"{shape}: ours {j:7.1f} img/s (compile+first epoch {extra['compile+first']:.1f}s)"
          f"   {torch_part}", flush=True)


if __name__ == "__main__":
  main()
