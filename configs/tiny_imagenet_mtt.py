"""Tiny ImageNet (64x64, 200 classes), MTT with ConvNet-4 (depth 4 for 64x64).

Distil: python -m dd_jax.main --config=configs/tiny_imagenet_mtt.py:ipc=1 \
          --workdir=/tmp/tiny1 --config.data.data_dir=/path/to/tiny-imagenet-200
Variants: ipc=1|10|50, runlocal.

Tiny ImageNet is not in tfds: data.source="folder" reads the standard
tiny-imagenet-200 layout (train/<wnid>/images/*.JPEG, val/val_annotations.txt).
Settings: the authors' commands (IPC 50 with ConvNet-D4 too). Paper: 8.8 / 23.2 / 28.0%.
"""
from configs import common

PER_IPC = {
    1: {"syn_steps": 10, "expert_epochs": 2, "max_start_epoch": 10, "lr_img": 10_000.0,
        "lr_lr": 1e-4, "lr_teacher": 0.01},
    10: {"syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 40, "lr_img": 10_000.0,
         "lr_lr": 1e-4, "lr_teacher": 0.01, "batch_syn": 200},
    50: {"syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 40, "lr_img": 10_000.0,
         "lr_lr": 1e-4, "lr_teacher": 0.01, "batch_syn": 300},
}


def dataset(config):
  config.data.name = "tiny_imagenet"
  config.data.source = "folder"
  config.model.depth = 4


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset)
