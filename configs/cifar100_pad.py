"""CIFAR-100, PAD (DATM backbone + FIEX + FIEM), ConvNet-3 with instance norm, ZCA.

Distil: python -m dd_jax.main --config=configs/cifar100_pad.py:ipc=10 --workdir=/tmp/c100
Variants: ipc=1|10|50, runlocal, fiex=0 / fiem=0 (both off = DATM).

Settings: the official PAD configs (configs/CIFAR-100/ConvIN/IPC*.yaml = the paper's
Table 10); addition ends at epoch 40. IPC 50 starts from random real images with a fixed
window [20, 70) and no mask, as the official file. Paper: 28.4 / 47.8 / 55.9%.
"""
from configs import common

_SHARED = {"lr_teacher": 0.01, "pix_init": "correct", "data.zca": True, "lr_y": 10.0,
           "loss_threshold": 1.0, "lr_img": 1_000.0, "lr_lr": 1e-5}
PER_IPC = {
    1: {**_SHARED, "syn_steps": 40, "expert_epochs": 3, "max_start_epoch": 30,
        "current_max_start_epoch": 20, "expansion_end": 1_000, "batch_syn": 0,
        "param_mask_ratio": 0.5},
    10: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 50,
         "current_max_start_epoch": 30, "expansion_end": 2_000, "batch_syn": 0,
         "param_mask_ratio": 0.5},
    50: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "min_start_epoch": 20,
         "max_start_epoch": 70, "batch_syn": 1_000, "pix_init": "real",
         "param_mask_ratio": 0.0},
}


def dataset(config):
  config.data.name = "cifar100"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, common.pad(addition_end=40))
