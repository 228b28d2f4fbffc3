"""MNIST, MTT (ConvNet-3, instance norm, no ZCA). Data from tfds.

Distil: python -m dd_jax.main --config=configs/mnist_mtt.py:ipc=1 --workdir=/tmp/mnist1
Variants: ipc=1|10|50, runlocal.

MTT publishes no MNIST settings; these follow its CIFAR-10 ones without ZCA.
"""
from configs import common
from configs.fashion_mnist_mtt import PER_IPC


def get_config(arg=None):
  args = common.parse_arg(arg)
  config = common.base_config()
  config.data.name = "mnist"
  if args.get("runlocal"):
    common.apply_runlocal(config)
  common.apply_distill(config, PER_IPC, args)
  config.lock()
  return config
