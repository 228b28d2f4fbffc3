"""CIFAR-10, IDC (multi-formation factor 2, gradient matching with the net trained on
real data between matches), ConvNet-3, instance norm, no ZCA.

Distil: python -m dd_jax.main --config=configs/cifar10_idc.py:ipc=10 --workdir=/tmp/c10_idc
Variants: ipc=1|10|50, runlocal, factor=<f> (1: no multi-formation), seq=1 (SeqMatch-IDC:
two subsets distilled one after another, the outer steps split between them).

Settings: the official reproduce values for CIFAR-10 (MSE gradient distance, lr_img
5e-3 x ipc/10, the net trained on 2_000 real images after each match, 2_000 outer steps
of 100 matches).
"""
from configs import common, variants

PER_IPC = {1: {}, 10: {}, 50: {}}


def dataset(config):
  config.data.name = "cifar10"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.idc(lr_base=5e-3, size_base=32, distance="mse", net_images=2_000))
