"""Tiny ImageNet (64x64, 200 classes), PAD with ConvNet-4, ZCA.

Distil: python -m dd_jax.main --config=configs/tiny_imagenet_pad.py:ipc=1 \
          --workdir=/tmp/tiny_pad --config.data.data_dir=/path/to/tiny-imagenet-200
Variants: ipc=1|10|50, runlocal, fiex=0 / fiem=0 (both off = DATM).

Settings: the official PAD configs (configs/TinyImageNet/ConvIN/IPC*.yaml = the paper's
Table 10); addition ends at epoch 40. Paper: 17.7 / 32.3 / 41.6%.
"""
from configs import common

_SHARED = {"lr_teacher": 0.01, "pix_init": "correct", "data.zca": True, "lr_y": 10.0,
           "loss_threshold": 1.0, "lr_lr": 1e-4, "expert_epochs": 2,
           "param_mask_ratio": 0.5}
PER_IPC = {
    1: {**_SHARED, "syn_steps": 40, "max_start_epoch": 20, "current_max_start_epoch": 15,
        "expansion_end": 2_000, "lr_img": 10_000.0, "batch_syn": 0},
    10: {**_SHARED, "syn_steps": 40, "min_start_epoch": 10, "max_start_epoch": 50,
         "lr_img": 100.0, "batch_syn": 500},
    50: {**_SHARED, "syn_steps": 20, "min_start_epoch": 40, "max_start_epoch": 70,
         "lr_img": 100.0, "batch_syn": 1_000},
}


def dataset(config):
  config.data.name = "tiny_imagenet"
  config.data.source = "folder"
  config.model.depth = 4


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, common.pad(addition_end=40))
