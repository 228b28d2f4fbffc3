"""Fashion-MNIST, IDC (multi-formation factor 2, gradient matching with the net trained
on real data between matches), ConvNet-3, instance norm.

Distil: python -m dd_jax.main --config=configs/fashion_mnist_idc.py:ipc=10 --workdir=/tmp/fm_idc
Variants: ipc=1|10|50, runlocal, factor=<f> (1: no multi-formation), seq=1 (SeqMatch-IDC:
two subsets distilled one after another, the outer steps split between them).

Settings: the official reproduce values for Fashion-MNIST (L1 gradient distance, lr_img
1e-4 x ipc/10 x (28/32)^2 — its size base is 32 for every dataset but "mnist" —, the net
trained on 500 real images after each match, 2_000 outer steps of 100 matches).
"""
from configs import common, variants

PER_IPC = {1: {}, 10: {}, 50: {}}


def dataset(config):
  config.data.name = "fashion_mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.idc(lr_base=1e-4, size_base=32, distance="l1", net_images=500))
