"""CIFAR-100, MTT (ConvNet-3, instance norm). Data from tfds.

Distil: python -m dd_jax.main --config=configs/cifar100_mtt.py:ipc=10 --workdir=/tmp/c100
Variants: ipc=1|10|50, runlocal.

Settings: the authors' commands for the paper's results. Paper: 24.3 / 40.1 / 47.7%.
"""
from configs import common

PER_IPC = {
    1: {"syn_steps": 20, "expert_epochs": 3, "max_start_epoch": 20, "lr_img": 1_000.0,
        "lr_lr": 1e-5, "lr_teacher": 0.01, "data.zca": True},
    10: {"syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 20, "lr_img": 1_000.0,
         "lr_lr": 1e-5, "lr_teacher": 0.01, "data.zca": False},
    50: {"syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 40, "lr_img": 1_000.0,
         "lr_lr": 1e-5, "lr_teacher": 0.01, "batch_syn": 125, "data.zca": True},
}


def dataset(config):
  config.data.name = "cifar100"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset)
