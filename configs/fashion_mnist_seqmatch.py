"""Fashion-MNIST, SeqMatch on MTT (ConvNet-3, instance norm, no ZCA).

Distil: python -m dd_jax.main --config=configs/fashion_mnist_seqmatch.py:ipc=10 \
          --workdir=/tmp/fm_seq10
Variants: ipc=10|50, runlocal, seq=0 (plain MTT), warm=1 (warm-started experts),
pad=1 / ast=1 (their switches on every subset).

No published Fashion-MNIST settings: MTT's (fashion_mnist_mtt) per subset, with MTT's
start window split so that each later subset matches a later segment of the same
experts (the paper's sequential idea): IPC 10 = 5 + 5 images per class on start epochs
[0, 10) then [10, 20); IPC 50 = 17 + 17 + 16 on [0, 14), [14, 27), [27, 40).
"""
from configs import common
from configs.fashion_mnist_mtt import PER_IPC as MTT

PER_IPC = {ipc: MTT[ipc] for ipc in (10, 50)}
SEQMATCH = {
    10: {"subsets": (5, 5), "min_start_epochs": (0, 10), "max_start_epochs": (10, 20)},
    50: {"subsets": (17, 17, 16), "min_start_epochs": (0, 14, 27),
         "max_start_epochs": (14, 27, 40)},
}


def dataset(config):
  config.data.name = "fashion_mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, common.seqmatch(SEQMATCH))
