"""Fashion-MNIST, DC (gradient matching, with DSA), ConvNet-3, instance norm; PAD's modules as variants.

Distil: python -m dd_jax.main --config=configs/fashion_mnist_dc.py:ipc=10 --workdir=/tmp/fashion_mnist_dc
Variants: ipc=1|10|50, runlocal, fiex=1 (PAD's FIEX: the hardest or easiest share of
each class removed as Table 6 gives for the IPC; scores computed first), fiem=1 (PAD's
FIEM: the shallowest parameters masked as Table 7 gives); pad.txt Appendix A.1, the
values in configs/papers.py PAD_DC (CIFAR-10's, the only ones).

Settings: the official DC/DSA/DM code (1_000 outer steps, lr_img 0.1, momentum 0.5,
nets at lr 0.01, 256 real images per class per match, real init, DSA).
"""
from configs import common, variants

PER_IPC = {1: {}, 10: {}, 50: {}}


def dataset(config):
  config.data.name = "fashion_mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.matching("dc", iterations=1_000, lr_img=0.1, schedule_steps=10))
