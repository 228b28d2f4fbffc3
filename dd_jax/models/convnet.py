"""The ConvNet of the dataset-distillation literature (DC/DSA/MTT/DATM/PAD).

depth x [conv3x3 (pad 1) -> norm -> ReLU -> pool 2x2], then one dense layer on the
features flattened in PyTorch's C-H-W order (see layers.flatten_chw). As the official
networks.py, the first conv pads one-channel (MNIST-like, 28 px) images by 3, so their
maps are 32 px as CIFAR's (`one_channel_padding`; 1 keeps 28 px, dd_jax's old net).
"""
from __future__ import annotations

import flax.linen as nn
import jax

from dd_jax.models import layers


class ConvNet(nn.Module):
  num_classes: int
  width: int = 128
  depth: int = 3
  norm: str = "instancenorm"
  pooling: str = "avgpooling"
  activation: str = "relu"
  conv_impl: str = "auto"
  one_channel_padding: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, features: bool = False):
    for d in range(self.depth):
      pad = self.one_channel_padding if d == 0 and x.shape[-1] == 1 else 1
      x = layers.Conv(self.width, 3, 1, pad, conv_impl=self.conv_impl, name=f"conv{d}")(x)
      x = layers.Norm(self.norm, train=train, name=f"norm{d}")(x)
      x = layers.ACTIVATIONS[self.activation](x)
      x = layers.pool2x2(x, self.pooling)
      self.sow("intermediates", f"block{d}", x)   # DM's per-layer features (if mutable)
    x = layers.flatten_chw(x)
    if features:
      return x
    return layers.Dense(self.num_classes, name="fc")(x)
