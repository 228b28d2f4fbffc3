"""CIFAR-10, SeqMatch on MTT (ConvNet-3, instance norm). Data from tfds.

Distil: python -m dd_jax.main --config=configs/cifar10_seqmatch.py:ipc=10 \
          --workdir=/tmp/c10_seq10
Variants: ipc=10|50, runlocal, seq=0 (plain MTT on these settings), warm=0 (ours: shared
experts, the windows laid end to end), code=1 (the official run.sh's IPC 50 values),
pad=1 / ast=1.

Settings: SeqMatch's Table 4 (seqmatch.txt lines 295-304), per subset where it gives a
set: IPC 10 = K 2 (5 + 5), max start epochs {20, 10}, synthetic steps {30, 80}, expert
epochs {2, 3}, lr_img 100, lr_lr 1e-5, lr_teacher 0.001; IPC 50 = K 3 (17 + 17 + 16, the
official run.sh), {20, 20, 10}, N 30, M 2, lr_img 100, lr_lr 1e-5, lr_teacher 0.01.
Batch "-" in the table: one batch of the whole subset (the official default). Each
later subset matches experts warm-started on the earlier subsets (seqmatch.experts
"warm_start", the paper's reading of the windows and the official code's), the window
read as MTT's max_start_epoch (the official randint(0, e - M) draws start epochs up to
M lower). ZCA as MTT's commands (IPC 10 on, IPC 50 off). `code=1` at IPC 50: run.sh's
lr_teacher 0.001 for subset 1 and ZCA on.
"""
from configs import common, variants

PER_IPC = {
    10: {"syn_steps": 30, "expert_epochs": 2, "max_start_epoch": 20, "lr_img": 100.0,
         "lr_lr": 1e-5, "lr_teacher": 0.001, "data.zca": True},
    50: {"syn_steps": 30, "expert_epochs": 2, "max_start_epoch": 20, "lr_img": 100.0,
         "lr_lr": 1e-5, "lr_teacher": 0.01, "data.zca": False},
}
SEQMATCH = {
    10: {"subsets": (5, 5), "max_start_epochs": (20, 10), "syn_steps": (30, 80),
         "expert_epochs": (2, 3)},
    50: {"subsets": (17, 17, 16), "max_start_epochs": (20, 20, 10)},
}
# The official seqmatch-mtt/run.sh (CIFAR-10 IPC 50 only).
CODE = {50: {"seqmatch.lr_teacher": (0.001, 0.01, 0.01), "data.zca": True}}


def dataset(config):
  config.data.name = "cifar10"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.when("pad", variants.pad(addition_end=20)),
                     variants.when("ast", variants.ast), variants.seqmatch(SEQMATCH, CODE))
