"""Tiny ImageNet (64x64, 200 classes), SeqMatch on MTT with ConvNet-4.

Distil: python -m dd_jax.main --config=configs/tiny_imagenet_seqmatch.py:ipc=10 \
          --workdir=/tmp/tiny_seq10 --config.data.data_dir=/path/to/tiny-imagenet-200
Variants: ipc=10, runlocal, seq=0 (plain MTT on these settings), warm=0 (ours: shared
experts, windows end to end), pad=1 / ast=1.

Settings: SeqMatch's Table 4 (seqmatch.txt lines 295-304), Tiny ImageNet IPC 10: K 2 (5
+ 5), max start epochs {20, 10}, N 20, M 2, batch 100, lr_img 10000, lr_lr 1e-4,
lr_teacher 0.01; ConvNet-4 (seqmatch.txt line 62). Later subsets match experts
warm-started on the earlier ones (seqmatch.experts "warm_start").
"""
from configs import common, variants
from configs import tiny_imagenet_mtt

PER_IPC = {
    10: {"syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 20, "lr_img": 10_000.0,
         "lr_lr": 1e-4, "lr_teacher": 0.01, "batch_syn": 100},
}
SEQMATCH = {10: {"subsets": (5, 5), "max_start_epochs": (20, 10)}}


def get_config(arg=None):
  return common.make(arg, PER_IPC, tiny_imagenet_mtt.dataset,
                     variants.when("pad", variants.pad(addition_end=20)),
                     variants.when("ast", variants.ast), variants.seqmatch(SEQMATCH))
