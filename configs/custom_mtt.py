r"""Your own data, MTT (ConvNet-3, instance norm, no ZCA).

Distil: python -m dd_jax.main --config=configs/custom_mtt.py:ipc=10,npz=/data/mine.npz \
          --workdir=/tmp/mine
        python -m dd_jax.main --config=configs/custom_mtt.py:ipc=10,folder=/data/mine,size=32 \
          --workdir=/tmp/mine
Variants: ipc=1|10|50, runlocal, npz=<file> (x_train, y_train, x_test, y_test: uint8
  [N, H, W(, C)] or floats in [0, 1], integer labels 0..C-1; class_names optional),
  folder=<dir> (train/<class>/*.png|jpg and test/<class>/* or val/<class>/*),
  size=<px> (resize every image: shorter side, then a centred square crop), name=<label>
  (what the run calls the data; default "custom").
The same as --config.data.source=npz|folder --config.data.data_dir=... on any config.
Settings are Fashion-MNIST's (configs/fashion_mnist_mtt.py): a starting point; the
per-IPC values there are the ones to tune for your data.
"""
from configs import common
from configs.fashion_mnist_mtt import PER_IPC


def dataset(config):
  config.data.name, config.data.source = "custom", "npz"


def own_data(config, args):
  data = config.data
  data.name = args.get("name", "custom")
  if args.get("folder"):
    data.source, data.data_dir = "folder", args["folder"]
  elif args.get("npz"):
    data.source, data.data_dir = "npz", args["npz"]
  data.image_size = int(args.get("size", 0))


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, own_data)
