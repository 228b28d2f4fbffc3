"""Tiny ImageNet (64x64, 200 classes), AST with ConvNet-4.

Distil: python -m dd_jax.main --config=configs/tiny_imagenet_ast.py:ipc=1 \
          --workdir=/tmp/tinya --config.data.data_dir=/path/to/tiny-imagenet-200
Variants: ipc=1|10|50, runlocal; smooth=0 / init=0 / balance=0 / inter=0 / perturb=0,
code=1, pad=1 (see configs/variants.ast).

Settings: IPC 1 is the official repository's command (N 10, M 2, T 10, lr_img 10^4,
lr_lr 10^-4); IPC 10 and 50 keep MTT's Tiny ImageNet commands (AST's paper gives no
per-IPC values, and reports no Tiny ImageNet IPC 50).
"""
from configs import common, tiny_imagenet_mtt, variants

PER_IPC = tiny_imagenet_mtt.PER_IPC
dataset = tiny_imagenet_mtt.dataset


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.when("pad", variants.pad(addition_end=40)), variants.ast)
