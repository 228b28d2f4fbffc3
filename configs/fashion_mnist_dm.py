"""Fashion-MNIST, DM (distribution matching), ConvNet-3, instance norm; PAD's modules as variants.

Distil: python -m dd_jax.main --config=configs/fashion_mnist_dm.py:ipc=10 --workdir=/tmp/fashion_mnist_dm
Variants: ipc=1|10|50, runlocal, fiex=1 (PAD's FIEX: the hardest or easiest share of
each class removed as Table 6 gives for the IPC; scores computed first), fiem=1 (PAD's
FIEM: the shallowest parameters masked as Table 7 gives); pad.txt Appendix A.1, the
values in configs/papers.py PAD_DM (CIFAR-10's, the only ones).

Settings: the official DC/DSA/DM code (20_000 outer steps, lr_img 1.0, momentum 0.5,
nets at lr 0.01, 256 real images per class per match, real init, DSA).
"""
from configs import common, variants

PER_IPC = {1: {}, 10: {}, 50: {}}


def dataset(config):
  config.data.name = "fashion_mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.matching("dm", iterations=20_000, lr_img=1.0, schedule_steps=200))
