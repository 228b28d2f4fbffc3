"""torchvision's ImageNet ResNet-18 in Flax, and its converter: H-PD's CAM network
(hpd.txt line 313: "a ResNet-18 trained on ImageNet-1k as a proxy model").

  python -m dd_jax.models.imagenet resnet18-f37072fd.pth /data/resnet18_imagenet.msgpack

reads a torchvision `resnet18` state dict (torch.save zip format) without torch and
without running pickled code (dd_jax/torch_pickle.py), checks every tensor's shape, and
writes the Flax variables (flax msgpack) that `hpd.distance_net=<that file>` loads; the
data's classes are then read as the ImageNet classes `gan.class_map` names.
Inputs are taken as they come (the run's preprocessing), as the official code does.
"""
from __future__ import annotations

import sys

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dd_jax.errors import ConfigError
from dd_jax.metadata import write_bytes_atomic
from dd_jax.models import layers
from dd_jax.models.resnet import BasicBlock
from dd_jax.torch_pickle import load_state_dict


class ResNet18ImageNet(nn.Module):
  """7x7 stem at stride 2, 3x3 max pool at stride 2, four stages of two basic blocks,
  batch norm, global average pooling, a 1000-way head (torchvision's resnet18)."""
  num_classes: int = 1000
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, features: bool = False):
    x = layers.Conv(64, 7, 2, 3, use_bias=False, conv_impl=self.conv_impl, name="conv1")(x)
    x = jax.nn.relu(layers.Norm("batchnorm", train=train, name="norm1")(x))
    x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                              ((0, 0), (1, 1), (1, 1), (0, 0)))
    for stage, (width, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
      for b in range(2):
        x = BasicBlock(width, stride if b == 0 else 1, "batchnorm", self.conv_impl,
                       name=f"layer{stage + 1}_{b}")(x, train)
    if features:
      return x
    return layers.Dense(self.num_classes, name="fc")(x.mean(axis=(1, 2)))


def torch_names() -> dict[str, tuple]:
  """torchvision key -> (collection, module path, leaf, transform)."""
  out = {"conv1.weight": ("params", ("conv1",), "kernel", "conv"),
         "fc.weight": ("params", ("fc",), "kernel", "dense"),
         "fc.bias": ("params", ("fc",), "bias", None)}

  def bn(torch_name, ours):
    out.update({f"{torch_name}.weight": ("params", ours + ("norm",), "scale", None),
                f"{torch_name}.bias": ("params", ours + ("norm",), "bias", None),
                f"{torch_name}.running_mean": ("batch_stats", ours + ("norm",), "mean", None),
                f"{torch_name}.running_var": ("batch_stats", ours + ("norm",), "var", None)})

  bn("bn1", ("norm1",))
  for stage in range(1, 5):
    for b in range(2):
      t, o = f"layer{stage}.{b}", f"layer{stage}_{b}"
      for i in (1, 2):
        out[f"{t}.conv{i}.weight"] = ("params", (o, f"conv{i}"), "kernel", "conv")
        bn(f"{t}.bn{i}", (o, f"norm{i}"))
      if stage > 1 and b == 0:
        out[f"{t}.downsample.0.weight"] = ("params", (o, "shortcut_conv"), "kernel", "conv")
        bn(f"{t}.downsample.1", (o, "shortcut_norm"))
  return out


def template(conv_impl: str = "auto") -> tuple[nn.Module, dict]:
  """The model and the shapes of its variables (no weights)."""
  model = ResNet18ImageNet(conv_impl=conv_impl)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                             jnp.zeros((1, 64, 64, 3)), train=False))
  return model, jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def from_state_dict(state: dict[str, np.ndarray], field: str = "path") -> dict:
  """Our variables from a torchvision resnet18 state dict; a missing, extra or
  misshaped tensor is named."""
  _, variables = template()
  variables = flax.core.unfreeze(variables)
  names = torch_names()
  extra = sorted(k for k in state if k not in names and not k.endswith("num_batches_tracked"))
  missing = sorted(k for k in names if k not in state)
  if extra or missing:
    raise ConfigError(field, f"not a torchvision resnet18 state dict (missing "
                      f"{missing[:3]}, unexpected {extra[:3]})",
                      "give torchvision.models.resnet18's weights (resnet18-*.pth)")
  for key, (collection, path, leaf, kind) in names.items():
    value = np.asarray(state[key], np.float32)
    if kind == "conv":
      value = value.transpose(2, 3, 1, 0)   # OIHW -> HWIO
    elif kind == "dense":
      value = value.T
    node = variables[collection]
    for p in path:
      node = node[p]
    if node[leaf].shape != value.shape:
      raise ConfigError(field, f"{key} has shape {tuple(state[key].shape)}, a resnet18 "
                        f"needs {node[leaf].shape}", "give torchvision's resnet18 weights")
    node[leaf] = value
  return variables


def load(path: str, field: str = "hpd.distance_net") -> tuple[nn.Module, dict]:
  """The converted model and variables written by `convert`."""
  model, variables = template()
  try:
    with open(path, "rb") as f:
      return model, flax.serialization.from_bytes(variables, f.read())
  except (OSError, ValueError, KeyError) as e:
    raise ConfigError(field, f"cannot read {path} ({e})",
                      "convert the weights with python -m dd_jax.models.imagenet") from None


def convert(src: str, dst: str) -> dict:
  variables = from_state_dict(load_state_dict(src, "in.pth"), "in.pth")
  write_bytes_atomic(dst, flax.serialization.to_bytes(variables))
  return variables


def main(argv: list[str]) -> int:
  if len(argv) != 3:
    print("usage: python -m dd_jax.models.imagenet resnet18.pth out.msgpack", file=sys.stderr)
    return 2
  try:
    convert(argv[1], argv[2])
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {argv[2]}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
