"""MNIST, MTT (ConvNet-3, instance norm, no ZCA). Data from tfds.

Distil: python -m dd_jax.main --config=configs/mnist_mtt.py:ipc=1 --workdir=/tmp/mnist1
Variants: ipc=1|10|50, runlocal.

MTT publishes no MNIST settings; these follow its CIFAR-10 ones without ZCA.
"""
from configs import common
from configs.fashion_mnist_mtt import PER_IPC


def dataset(config):
  config.data.name = "mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset)
