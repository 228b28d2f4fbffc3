"""ResNet18 as in the official code (3x3 stem, no stem pooling), instance or batch norm;
a 64 px input (Tiny ImageNet) takes the stem at stride 2 (pad.txt line 456, the official
PAD networks.py's res=64), ending on the 32 px net's 4x4 map."""
from __future__ import annotations

import flax.linen as nn
import jax

from dd_jax.models import classic, layers


class BasicBlock(nn.Module):
  features: int
  stride: int
  norm: str
  conv_impl: str

  @nn.compact
  def __call__(self, x: jax.Array, train: bool):
    conv = lambda f, k, s, p, name: layers.Conv(f, k, s, p, use_bias=False,
                                                conv_impl=self.conv_impl, name=name)
    out = conv(self.features, 3, self.stride, 1, "conv1")(x)
    out = jax.nn.relu(layers.Norm(self.norm, train=train, name="norm1")(out))
    out = conv(self.features, 3, 1, 1, "conv2")(out)
    out = layers.Norm(self.norm, train=train, name="norm2")(out)
    if self.stride != 1 or x.shape[-1] != self.features:
      x = conv(self.features, 1, self.stride, 0, "shortcut_conv")(x)
      x = layers.Norm(self.norm, train=train, name="shortcut_norm")(x)
    return jax.nn.relu(out + x)


class ResNet18(nn.Module):
  num_classes: int
  norm: str = "instancenorm"
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, features: bool = False):
    """Logits; `features=True`: the last block's map [B, h, w, 512] before the pooling."""
    stride = classic.stem_stride(x)
    x = layers.Conv(64, 3, stride, 1, use_bias=False, conv_impl=self.conv_impl,
                    name="conv1")(x)
    x = jax.nn.relu(layers.Norm(self.norm, train=train, name="norm1")(x))
    for stage, (width, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
      for b in range(2):
        x = BasicBlock(width, stride if b == 0 else 1, self.norm, self.conv_impl,
                       name=f"layer{stage + 1}_{b}")(x, train)
    if features:
      return x
    x = x.mean(axis=(1, 2))  # the official avg_pool2d(4) on the final 4x4 map
    return layers.Dense(self.num_classes, name="fc")(x)
