"""CIFAR-10, AST (ConvNet-3, instance norm). Data from tfds.

Distil: python -m dd_jax.main --config=configs/cifar10_ast.py:ipc=10 --workdir=/tmp/c10a
Variants: ipc=1|10|50, runlocal; smooth=0 / init=0 / balance=0 / inter=0 / perturb=0,
code=1, pad=1 (see configs/variants.ast).

Settings: AST's paper gives no per-IPC values (its tables are results); IPC 10 is the official
repository's CIFAR-10 command (N 30, M 2, T 20, ZCA, lr_lr 1e-5, lr_img 1000), IPC 1 and
50 keep MTT's CIFAR-10 commands (AST's code starts from MTT's). Experts: 50 epochs
(the README's command: SGD momentum, clipped loss, gradient penalty, ZCA).
"""
from configs import cifar10_mtt, common, variants

# MTT's commands, with the official AST command at IPC 10.
PER_IPC = {**cifar10_mtt.PER_IPC,
           10: {"syn_steps": 30, "expert_epochs": 2, "max_start_epoch": 20,
                "lr_img": 1_000.0, "lr_lr": 1e-5, "lr_teacher": 0.01, "data.zca": True}}


def dataset(config):
  config.data.name = "cifar10"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.when("pad", variants.pad(addition_end=20)), variants.ast)
