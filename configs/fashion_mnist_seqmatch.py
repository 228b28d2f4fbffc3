"""Fashion-MNIST, SeqMatch on MTT (ConvNet-3, instance norm, no ZCA).

Distil: python -m dd_jax.main --config=configs/fashion_mnist_seqmatch.py:ipc=10 \
          --workdir=/tmp/fm_seq10
Variants: ipc=10|50, runlocal, seq=0 (plain MTT), warm=0 (ours: shared experts, the
windows end to end: IPC 10 on start epochs [0, 20) then [20, 30)), pad=1 / ast=1 (their
switches on every subset).

No published Fashion-MNIST settings: MTT's (fashion_mnist_mtt) per subset, split as
SeqMatch's CIFAR-10 rows of Table 4 (seqmatch.txt lines 295-304): IPC 10 = 5 + 5 images
per class with max start epochs {20, 10}; IPC 50 = 17 + 17 + 16 with {20, 20, 10}; later
subsets match experts warm-started on the earlier ones (seqmatch.experts "warm_start").
"""
from configs import common, variants
from configs.fashion_mnist_mtt import PER_IPC as MTT

PER_IPC = {ipc: MTT[ipc] for ipc in (10, 50)}
SEQMATCH = {
    10: {"subsets": (5, 5), "max_start_epochs": (20, 10)},
    50: {"subsets": (17, 17, 16), "max_start_epochs": (20, 20, 10)},
}


def dataset(config):
  config.data.name = "fashion_mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.when("pad", variants.pad(addition_end=20)),
                     variants.when("ast", variants.ast), variants.seqmatch(SEQMATCH))
