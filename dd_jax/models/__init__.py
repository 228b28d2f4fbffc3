"""Models by name: the distillation ConvNet family and the evaluation architectures.

`build(name, num_classes, ...)` is the one place a name becomes a module; every choice
is in `ARCHITECTURES`, so `grep` finds them all.
"""
from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn

from dd_jax.errors import ConfigError
from dd_jax.models.classic import AlexNet, LeNet, MLP, VGG11
from dd_jax.models.convnet import ConvNet
from dd_jax.models.layers import CONV_IMPLS, NORMS
from dd_jax.models.resnet import ResNet18
from dd_jax.models.vit import ViT

# name -> constructor(num_classes, **overrides). Variants fix a field of the base model.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "ConvNet": ConvNet,
    "ConvNetBN": functools.partial(ConvNet, norm="batchnorm"),
    "ConvNetNoNorm": functools.partial(ConvNet, norm="none"),
    "ConvNetD4": functools.partial(ConvNet, depth=4),
    "ConvNetD5": functools.partial(ConvNet, depth=5),
    "LeNet": LeNet,
    "AlexNet": AlexNet,
    "VGG11": VGG11,
    "VGG11BN": functools.partial(VGG11, norm="batchnorm"),
    "ResNet18": ResNet18,
    "ResNet18BN": functools.partial(ResNet18, norm="batchnorm"),
    "MLP": MLP,   # the official networks.py's: two hidden layers of 128
    "MLP128": functools.partial(MLP, hidden=(128,)),   # PAD's paper: one (pad.txt l. 456)
    "ViT": ViT,   # GLaD's ViTCIFAR: patch 4, dim 512, depth 6
    "ViTTiny": functools.partial(ViT, dim=128, depth=4, heads=4, dim_head=32, mlp_dim=256),
}

# Fields each family accepts from the config's `model` section.
_FIELDS = {
    ConvNet: ("width", "depth", "norm", "pooling", "activation", "conv_impl",
              "one_channel_padding"),
    LeNet: ("conv_impl",),
    AlexNet: ("conv_impl",),
    VGG11: ("norm", "conv_impl"),
    ResNet18: ("norm", "conv_impl"),
    MLP: ("hidden",),
    ViT: (),
}


def build(name: str, num_classes: int, field: str = "model.arch", **overrides) -> nn.Module:
  """Constructs an architecture by name; `overrides` the family does not take are ignored.

  Raises:
    ConfigError: unknown name, norm or conv implementation.
  """
  if name not in ARCHITECTURES:
    raise ConfigError(field, f"unknown architecture {name!r}",
                      f"use one of {', '.join(ARCHITECTURES)}")
  ctor = ARCHITECTURES[name]
  family = ctor.func if isinstance(ctor, functools.partial) else ctor
  fixed = ctor.keywords if isinstance(ctor, functools.partial) else {}
  kwargs = {k: v for k, v in overrides.items()
            if k in _FIELDS[family] and k not in fixed and v is not None}
  if "norm" in kwargs and kwargs["norm"] not in NORMS:
    raise ConfigError("model.norm", f"unknown norm {kwargs['norm']!r}",
                      f"use one of {', '.join(NORMS)}")
  if "conv_impl" in kwargs and kwargs["conv_impl"] not in CONV_IMPLS:
    raise ConfigError("model.conv_impl", f"unknown conv_impl {kwargs['conv_impl']!r}",
                      f"use one of {', '.join(CONV_IMPLS)}")
  if kwargs.get("one_channel_padding", 0) < 0:
    raise ConfigError("model.one_channel_padding", f"is {kwargs['one_channel_padding']}",
                      "use 3 (the official networks' 28 -> 32 px) or another padding >= 0")
  if "hidden" in kwargs:
    kwargs["hidden"] = tuple(kwargs["hidden"])
  return ctor(num_classes=num_classes, **kwargs)


def from_config(model_config, num_classes: int, arch: str | None = None,
                field: str = "model.arch") -> nn.Module:
  """Builds `arch` (default: model_config.arch) with the config's model fields."""
  overrides = {k: model_config.get(k) for k in
               ("width", "depth", "norm", "pooling", "activation", "conv_impl", "hidden",
                "one_channel_padding")}
  if arch is not None and arch != model_config.arch:
    # Evaluation nets of another family take only the backend choice (and the stem
    # padding, a ConvNet's) from the config.
    overrides = {k: overrides[k] for k in ("conv_impl", "one_channel_padding")}
  return build(arch or model_config.arch, num_classes, field=field, **overrides)
