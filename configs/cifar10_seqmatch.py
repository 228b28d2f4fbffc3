"""CIFAR-10, SeqMatch on MTT (ConvNet-3, instance norm). Data from tfds.

Distil: python -m dd_jax.main --config=configs/cifar10_seqmatch.py:ipc=10 \
          --workdir=/tmp/c10_seq10
Variants: ipc=10|50, runlocal, seq=0 (plain MTT), warm=1 (the official code's
warm-started experts per subset), pad=1 / ast=1.

Settings: MTT's per-IPC commands for each subset (cifar10_mtt), split as the paper: K=2
for IPC 10 (5 + 5) with per-subset max start epochs {20, 10}; K=3 for IPC 50 (17 + 17 +
16, the official run.sh) with its intervals 0-20, 0-20, 0-10 as max start epochs (the
code's randint(s, e - M) stops M + 1 epochs earlier), syn_steps 30, lr_img 100 and
lr_teacher 0.001 for the first subset, 0.01 for the others. With shared experts the
windows read as written; the official code applies them to its warm-started
trajectories (warm=1).
"""
from configs import common
from configs.cifar10_mtt import PER_IPC as MTT

PER_IPC = {10: MTT[10], 50: dict(MTT[50], syn_steps=30, lr_img=100.0)}
SEQMATCH = {
    10: {"subsets": (5, 5), "max_start_epochs": (20, 10)},
    50: {"subsets": (17, 17, 16), "max_start_epochs": (20, 20, 10),
         "lr_teacher": (0.001, 0.01, 0.01)},
}


def dataset(config):
  config.data.name = "cifar10"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, common.seqmatch(SEQMATCH))
