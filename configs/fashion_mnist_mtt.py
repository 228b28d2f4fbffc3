"""Fashion-MNIST, MTT settings (ConvNet-3, instance norm, no ZCA).

Experts:  python -m dd_jax.experts --config=configs/fashion_mnist_mtt.py --workdir=/tmp/fm
Evaluate: python -m dd_jax.evaluate --config=configs/fashion_mnist_mtt.py:ipc=10 \
            --workdir=/tmp/fm
Variants: ipc=<n> (evaluation subset size), runlocal (tiny, seconds).
Expected (random real subsets, ConvNet-3, 5 nets): about 51% IPC1, 74% IPC10, 82% IPC50.
"""
from configs import common


def get_config(arg=None):
  args = common.parse_arg(arg)
  config = common.base_config()
  config.data.name = "fashion_mnist"
  if args.get("runlocal"):
    common.apply_runlocal(config)
  if "ipc" in args:
    config.eval.ipc = int(args["ipc"])
  config.lock()
  return config
