"""CIFAR-100, SeqMatch on MTT (ConvNet-3, instance norm). Data from tfds.

Distil: python -m dd_jax.main --config=configs/cifar100_seqmatch.py:ipc=10 \
          --workdir=/tmp/c100_seq10
Variants: ipc=10|50, runlocal, seq=0 (plain MTT on these settings), warm=0 (ours: shared
experts, windows end to end), pad=1 / ast=1.

Settings: SeqMatch's Table 4 (seqmatch.txt lines 295-304): IPC 10 = K 2 (5 + 5), max
start epochs {20, 40}, N 30, M 2; IPC 50 = K 3 (17 + 17 + 16, as CIFAR-10's run.sh), {40,
20, 20}, N 80, M 2, batch 125; lr_img 1000, lr_lr 1e-5, lr_teacher 0.01 for both. Later
subsets match experts warm-started on the earlier ones (seqmatch.experts "warm_start");
subset 2's window 40 at IPC 10 needs experts of >= 42 epochs (expert.epochs 50). ZCA as
MTT's CIFAR-100 commands (IPC 10 off, IPC 50 on). The official repository ships no
CIFAR-100 command.
"""
from configs import common, variants

PER_IPC = {
    10: {"syn_steps": 30, "expert_epochs": 2, "max_start_epoch": 20, "lr_img": 1_000.0,
         "lr_lr": 1e-5, "lr_teacher": 0.01, "data.zca": False},
    50: {"syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 40, "lr_img": 1_000.0,
         "lr_lr": 1e-5, "lr_teacher": 0.01, "batch_syn": 125, "data.zca": True},
}
SEQMATCH = {
    10: {"subsets": (5, 5), "max_start_epochs": (20, 40)},
    50: {"subsets": (17, 17, 16), "max_start_epochs": (40, 20, 20)},
}


def dataset(config):
  config.data.name = "cifar100"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.when("pad", variants.pad(addition_end=20)),
                     variants.when("ast", variants.ast), variants.seqmatch(SEQMATCH))
