"""CIFAR-10, PAD (DATM backbone + FIEX + FIEM), ConvNet-3 with instance norm, ZCA.

Distil: python -m dd_jax.main --config=configs/cifar10_pad.py:ipc=10 --workdir=/tmp/c10_pad
Variants: ipc=1|10|50, runlocal (seconds on a CPU), fiex=0 / fiem=0 (ablations; both
off = DATM).

Settings: the official PAD configs (configs/CIFAR-10/ConvIN/IPC*.yaml, the values of the
paper's Table 10): N, M, lr_img, lr_lr, soft-label lr_y, loss threshold, start window
(min / current max / max, expansion end) and the FIEM depth ratio alpha. A `batch_syn`
at least the set size (official 1000 for IPC 1) is the whole set. Paper (ConvNet):
47.2 / 67.4 / 77.0%.
"""
from configs import common

_SHARED = {"lr_teacher": 0.01, "pix_init": "correct", "data.zca": True}
PER_IPC = {
    1: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 4,
        "lr_img": 100.0, "lr_lr": 1e-7, "batch_syn": 0, "lr_y": 5.0,
        "loss_threshold": 1.1, "param_mask_ratio": 0.0},
    10: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 20,
         "current_max_start_epoch": 10, "expansion_end": 1_000, "lr_img": 100.0,
         "lr_lr": 1e-5, "batch_syn": 0, "lr_y": 2.0, "loss_threshold": 1.0,
         "param_mask_ratio": 0.5},
    50: {**_SHARED, "syn_steps": 80, "expert_epochs": 3, "max_start_epoch": 40,
         "current_max_start_epoch": 20, "expansion_end": 2_000, "lr_img": 1_000.0,
         "lr_lr": 1e-5, "batch_syn": 0, "lr_y": 2.0, "loss_threshold": 1.0,
         "param_mask_ratio": 0.25},
}


def dataset(config):
  config.data.name = "cifar10"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, common.pad(addition_end=20))
