"""Measures the two convolution formulations inside lax.scan, with grad and grad-of-grad.

Prints wall time per call for `lax.conv` and im2col/matmul on this backend, for the
ConvNet-3 (width 128) cases that dominate expert training (grad) and trajectory matching
(grad of an unrolled grad). `python benchmarks/conv_kernels.py [--smoke]`.
"""
import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402
from dd_jax.models.convnet import ConvNet  # noqa: E402


def bench(impl, shape, batch, steps, order, width=128):
  model = ConvNet(num_classes=10, conv_impl=impl, width=width)
  x = jax.random.normal(jax.random.PRNGKey(0), (steps, batch) + shape)
  y = jnp.zeros((steps, batch), jnp.int32)
  params = model.init(jax.random.PRNGKey(1), x[0])["params"]

  def loss(p, xb, yb):
    logits = model.apply({"params": p}, xb)
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(batch), yb])

  def unroll(p, xs):
    def step(p, xy):
      g = jax.grad(loss)(p, *xy)
      return jax.tree.map(lambda a, b: a - 0.01 * b, p, g), None
    p, _ = jax.lax.scan(step, p, (xs, y))
    return sum(jnp.sum(l ** 2) for l in jax.tree.leaves(p))

  if order == 1:
    fn = jax.jit(unroll)
  else:
    fn = jax.jit(jax.grad(unroll, argnums=1))
  t = time.perf_counter()
  jax.block_until_ready(fn(params, x))
  compile_and_first = time.perf_counter() - t
  t = time.perf_counter()
  jax.block_until_ready(fn(params, x))
  return time.perf_counter() - t, compile_and_first


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_smoke(p)
  smoke = p.parse_args().smoke
  print(f"backend: {jax.default_backend()}")
  shapes = [(8, 8, 1)] if smoke else [(28, 28, 1), (32, 32, 3)]
  for shape in shapes:
    for order, batch, steps in [(1, 4, 1), (2, 2, 1)] if smoke else [(1, 64, 2), (2, 10, 5)]:
      times = {impl: bench(impl, shape, batch, steps, order, width=8 if smoke else 128)
               for impl in ("im2col", "lax")}
      what = "grad (expert step)" if order == 1 else "grad-of-grad (matching)"
      print(f"{shape} {what:24s} batch {batch:3d} x {steps:2d} steps: "
            f"lax {times['lax'][0]:.3f}s  im2col {times['im2col'][0]:.3f}s  "
            f"ratio {times['lax'][0] / times['im2col'][0]:.1f}x  "
            f"(first call incl. compile: lax {times['lax'][1]:.1f}s, "
            f"im2col {times['im2col'][1]:.1f}s)", flush=True)


if __name__ == "__main__":
  main()
