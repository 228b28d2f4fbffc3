"""CIFAR-100, AST (ConvNet-3, instance norm, ZCA). Data from tfds.

Distil: python -m dd_jax.main --config=configs/cifar100_ast.py:ipc=10 --workdir=/tmp/c100a
Variants: ipc=1|10|50, runlocal; smooth=0 / init=0 / balance=0 / inter=0 / perturb=0,
code=1, pad=1 (see configs/variants.ast).

Settings: AST's paper gives no per-IPC values (its tables are results; the method's
values are in configs/variants.ast), so these are the official repository's commands: IPC
1 the README's (N 20, M 3, T 20, lr_img 1000, ZCA), IPC 10 and 50 distill.sh's (N 20 /
80, M 2, T 30 / 40, batch_syn 128 / 700, lr_img 1000, lr_lr 1e-5, no ZCA).
"""
from configs import common, variants

_SHARED = {"lr_teacher": 0.01, "lr_lr": 1e-5, "lr_img": 1_000.0, "data.zca": False}
PER_IPC = {
    1: {**_SHARED, "syn_steps": 20, "expert_epochs": 3, "max_start_epoch": 20,
        "data.zca": True},
    10: {**_SHARED, "syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 30,
         "batch_syn": 128},
    50: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 40,
         "batch_syn": 700},
}


def dataset(config):
  config.data.name = "cifar100"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.when("pad", variants.pad(addition_end=40)), variants.ast)
