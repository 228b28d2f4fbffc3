"""H-PD's selection criteria (hpd.txt Sec. 3.3-3.4): the class-relevant feature distance
that picks each optimisation space's best latents, and accuracy on held-out training
images that picks the final set.

Class-relevant feature distance (Eq. 5-6): with a trained network whose features f(x)
feed global pooling and a linear head,

  cam_c(x) = ReLU(d logit_c / d f(x)) * f(x),
  d = sum_c || mean_{x in real_c} cam_c(x) - mean_{x in syn_c} cam_c(x) ||^2.

The paper uses an ImageNet-trained ResNet-18 (line 313): convert torchvision's weights
with `python -m dd_jax.models.imagenet` and set `hpd.distance_net=<the .msgpack>`; the
data's classes are read as the ImageNet classes `gan.class_map` names. Without weights
(offline) the default is a ResNet-18 (global average pooling before `fc`) trained on the
run's own training set (`hpd.distance_net="ResNet18"`, `hpd.distance_epochs`), cached
under <workdir>/hpd/; "expert" takes the first expert's last snapshot (a ConvNet: its
flattened linear head, dd_jax's choice before 2026-12).

Held-out accuracy (`hpd.select = "accuracy"`, line 47: "based on the real performance"):
`hpd.select_nets` nets trained `hpd.select_epochs` epochs on a recorded set with the
evaluation recipe, scored on `data.holdout_per_class` training images per class that no
expert, net or distillation step saw; never the test set.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

from absl import logging
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dd_jax import models, training
from dd_jax.data import pipeline
from dd_jax.errors import require
from dd_jax.metadata import write_bytes_atomic, write_json_atomic
from dd_jax.models.layers import Dense

POOLED = ("ResNet18", "ResNet18BN")   # nets with global pooling before the linear head


@dataclasses.dataclass(frozen=True)
class CamNet:
  """A trained net the distance reads: `pooled` = features are a map that the head
  averages (ResNet), else the head's flattened input (ConvNet); `class_index` maps the
  data's classes to the head's outputs (an ImageNet net: gan.class_map), None = same."""
  model: nn.Module
  variables: dict
  pooled: bool
  class_index: tuple[int, ...] | None = None


def is_weights_file(name: str) -> bool:
  return name.endswith(".msgpack")


def validate(config: ml_collections.ConfigDict) -> None:
  h = config.hpd
  if is_weights_file(h.distance_net):
    require(os.path.exists(h.distance_net), "hpd.distance_net",
            f"{h.distance_net} does not exist",
            "convert torchvision's resnet18 weights with python -m dd_jax.models.imagenet")
    require(len(config.gan.class_map) > 0, "gan.class_map",
            "an ImageNet CAM net needs the data's classes as ImageNet indices",
            "set gan.class_map (e.g. configs/imagenette_hpd.py's), or hpd.distance_net="
            "'ResNet18'")
  else:
    require(h.distance_net == "expert" or h.distance_net in POOLED, "hpd.distance_net",
            f"{h.distance_net!r} has no global pooling before its head",
            f"use one of {', '.join(POOLED)} (trained here), a converted ImageNet "
            "ResNet-18 (.msgpack) or 'expert'")
  require(h.distance_epochs >= 1, "hpd.distance_epochs", f"is {h.distance_epochs}",
          "train the distance net for >= 1 epoch")
  if h.select == "accuracy":
    require(config.data.holdout_per_class > 0, "hpd.select",
            "'accuracy' scores each recorded set on held-out training images, and "
            "data.holdout_per_class is 0",
            "set --config.data.holdout_per_class=<n> (e.g. 50), or hpd.select='distance'")
    require(h.select_nets >= 1 and h.select_epochs >= 1, "hpd.select_epochs",
            f"{h.select_nets} nets x {h.select_epochs} epochs",
            "train >= 1 net for >= 1 epoch per recorded set")


def cam_features(net: CamNet, images: jax.Array, labels: jax.Array) -> jax.Array:
  """ReLU(d logit_y / d features) * features of each image, flattened: [B, D]."""
  feats = net.model.apply(net.variables, images, train=False, features=True)
  head = Dense(net.model.num_classes)
  fc = {"params": net.variables["params"]["fc"]}

  def logit(f, y):
    z = jnp.mean(f, axis=(0, 1)) if net.pooled else f
    return head.apply(fc, z[None])[0, y]

  if net.class_index is not None:
    labels = jnp.asarray(net.class_index)[labels]
  grads = jax.vmap(jax.grad(logit))(feats, labels)
  return (jax.nn.relu(grads) * feats).reshape(feats.shape[0], -1)


def class_means(net: CamNet, images: jax.Array, labels: jax.Array,
                num_classes: int) -> dict[int, np.ndarray]:
  """Each present class's mean CAM features (the real side is computed once a run)."""
  cam, labels = np.asarray(cam_features(net, images, labels)), np.asarray(labels)
  return {c: cam[labels == c].mean(0) for c in range(num_classes) if (labels == c).any()}


def class_relevant_distance(net: CamNet, real: jax.Array | dict, real_labels: jax.Array,
                            syn: jax.Array, syn_labels: jax.Array, num_classes: int) -> float:
  """sum over classes of |mean CAM features of real_c - mean of syn_c|^2 (Eq. 6);
  `real` may be `class_means` of the real images already."""
  r = real if isinstance(real, dict) else class_means(net, real, real_labels, num_classes)
  s = class_means(net, syn, syn_labels, num_classes)
  return float(sum(np.sum(np.square(r[c] - s[c])) for c in s if c in r))


def _net_meta(config, prepared: pipeline.Prepared) -> dict:
  h = config.hpd
  return {"data": prepared.describe(), "arch": h.distance_net, "epochs": h.distance_epochs,
          "lr": h.distance_lr, "seed": config.seed}


def distance_net(config: ml_collections.ConfigDict, workdir: str,
                 prepared: pipeline.Prepared) -> CamNet:
  """The `hpd.distance_net` arch trained on the training set (SGD momentum 0.9, weight
  decay 5e-4, lr x0.1 at half, the experts' augmentation), read from its cache file
  when one exists for the same data and settings."""
  h = config.hpd
  if is_weights_file(h.distance_net):
    from dd_jax.models import imagenet
    model, variables = imagenet.load(h.distance_net)
    class_map = tuple(int(c) for c in config.gan.class_map)
    require(len(class_map) == prepared.num_classes, "gan.class_map",
            f"{len(class_map)} classes for the data's {prepared.num_classes}",
            "give one ImageNet index per class")
    return CamNet(model, variables, pooled=True, class_index=class_map)
  model = models.build(h.distance_net, prepared.num_classes, field="hpd.distance_net",
                       conv_impl=config.model.conv_impl)
  meta = _net_meta(config, prepared)
  digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12]
  path = os.path.join(workdir, "hpd", f"distance_net_{digest}.msgpack")
  tx = training.direction("sgd", 0.9, 5e-4)
  x, y = jnp.asarray(prepared.x_train), jnp.asarray(prepared.y_train)
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 104_729)   # its own stream
  state = training.init_state(model, key, x[:1], tx)
  variables = {"params": state.params, **({"batch_stats": state.batch_stats}
                                          if state.batch_stats else {})}
  if os.path.exists(path):
    with open(path, "rb") as f:
      variables = flax.serialization.from_bytes(variables, f.read())
    return CamNet(model, variables, pooled=True)
  epoch_fn = jax.jit(training.make_train_epoch(model, tx, 256, config.expert.dsa_strategy))
  start = time.perf_counter()
  for epoch in range(1, h.distance_epochs + 1):
    lr = h.distance_lr * (0.1 if epoch > h.distance_epochs // 2 else 1.0)
    state, loss, acc = epoch_fn(state, jnp.float32(lr), x, y, jax.random.fold_in(key, epoch))
    loss, acc = float(loss), float(acc)   # waits for the epoch: the ETA counts it
    elapsed = time.perf_counter() - start
    logging.info("H-PD distance net %s epoch %d/%d: loss %.4f train acc %.4f (ETA %.0f s)",
                 h.distance_net, epoch, h.distance_epochs, loss, acc,
                 elapsed / epoch * (h.distance_epochs - epoch))
  variables = {"params": state.params, **({"batch_stats": state.batch_stats}
                                          if state.batch_stats else {})}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  write_bytes_atomic(path, flax.serialization.to_bytes(variables))
  write_json_atomic(path.replace(".msgpack", ".json"), meta)
  return CamNet(model, variables, pooled=True)


def holdout_accuracy(config: ml_collections.ConfigDict, prepared: pipeline.Prepared,
                     images: np.ndarray, labels: np.ndarray, lr: float) -> float:
  """Mean accuracy on the held-out training images of `hpd.select_nets` nets trained on
  (images, labels) at `lr` for `hpd.select_epochs` epochs (the eval section's recipe)."""
  from dd_jax.evaluate import protocol   # evaluation imports the distillation's modules
  e, h = config.eval, config.hpd
  result = protocol.evaluate_synset(
      images, labels, prepared.x_holdout, prepared.y_holdout,
      num_classes=prepared.num_classes, arch=config.model.arch, model_config=config.model,
      lr=lr, epochs=h.select_epochs, batch_size=e.batch_size, momentum=e.momentum,
      weight_decay=e.weight_decay, dsa_strategy=e.dsa_strategy, num_nets=h.select_nets,
      seed=config.seed, protocol=e.protocol)
  return float(np.mean(result.accuracies))
