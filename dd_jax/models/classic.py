"""The evaluation architectures of the official code: LeNet, AlexNet, VGG11, MLP.

Shapes follow the official networks.py: one-channel (28x28) inputs get the extra padding
that makes their feature maps match the 32x32 case. Features are flattened C-H-W.
64 px inputs (Tiny ImageNet) take PAD's changes (pad.txt line 456; the official PAD
networks.py's `res=64`): LeNet's and AlexNet's first conv at stride 2, VGG's final
(1x1) pooling at stride 2, so every net ends on the 32 px net's feature size.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from dd_jax.models import layers

TINY = 64   # the input size that takes the stride-2 changes


def stem_stride(x: jax.Array) -> int:
  """1, or 2 for a 64 px input (PAD's Tiny ImageNet nets)."""
  return 2 if x.shape[1] == TINY else 1


class MLP(nn.Module):
  num_classes: int
  hidden: Sequence[int] = (128, 128)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True):
    x = layers.flatten_chw(x)
    for i, h in enumerate(self.hidden):
      x = jax.nn.relu(layers.Dense(h, name=f"fc{i}")(x))
    return layers.Dense(self.num_classes, name=f"fc{len(self.hidden)}")(x)


class LeNet(nn.Module):
  num_classes: int
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True):
    pad = 2 if x.shape[-1] == 1 else 0
    x = layers.Conv(6, 5, stem_stride(x), pad, conv_impl=self.conv_impl, name="conv0")(x)
    x = layers.pool2x2(jax.nn.relu(x), "maxpooling")
    x = layers.Conv(16, 5, 1, 0, conv_impl=self.conv_impl, name="conv1")(x)
    x = layers.pool2x2(jax.nn.relu(x), "maxpooling")
    x = layers.flatten_chw(x)
    x = jax.nn.relu(layers.Dense(120, name="fc0")(x))
    x = jax.nn.relu(layers.Dense(84, name="fc1")(x))
    return layers.Dense(self.num_classes, name="fc2")(x)


class AlexNet(nn.Module):
  num_classes: int
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True):
    conv = lambda f, k, p, name, s=1: layers.Conv(f, k, s, p, conv_impl=self.conv_impl,
                                                  name=name)
    x = jax.nn.relu(conv(128, 5, 4 if x.shape[-1] == 1 else 2, "conv0", stem_stride(x))(x))
    x = layers.pool2x2(x, "maxpooling")
    x = layers.pool2x2(jax.nn.relu(conv(192, 5, 2, "conv1")(x)), "maxpooling")
    x = jax.nn.relu(conv(256, 3, 1, "conv2")(x))
    x = jax.nn.relu(conv(192, 3, 1, "conv3")(x))
    x = layers.pool2x2(jax.nn.relu(conv(192, 3, 1, "conv4")(x)), "maxpooling")
    return layers.Dense(self.num_classes, name="fc")(layers.flatten_chw(x))


VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
  num_classes: int
  norm: str = "instancenorm"
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True):
    one_channel, tiny = x.shape[-1] == 1, stem_stride(x) == 2
    i = 0
    for v in VGG11_CFG:
      if v == "M":
        x = layers.pool2x2(x, "maxpooling")
        continue
      pad = 3 if (one_channel and i == 0) else 1
      x = layers.Conv(v, 3, 1, pad, conv_impl=self.conv_impl, name=f"conv{i}")(x)
      x = jax.nn.relu(layers.Norm(self.norm, train=train, name=f"norm{i}")(x))
      i += 1
    if tiny:   # the official AvgPool2d(kernel 1, stride 2): 2x2 -> its top-left entry
      x = x[:, ::2, ::2]
    return layers.Dense(self.num_classes, name="fc")(layers.flatten_chw(x))
