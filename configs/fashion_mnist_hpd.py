"""Fashion-MNIST, H-PD / GLaD on the small offline prior (CPU).

Distil: python -m dd_jax.main --config=configs/fashion_mnist_hpd.py:ipc=1 --workdir=/tmp/fm_hpd
Variants: ipc=1|10, glad=1 (GLaD at layer 2: no progression), method=dc|dm, prior=random
(GLaD's random prior), runlocal.

The prior is the small StyleGAN3-t (32 px, 4 synthesis layers + ToRGB) that
`python -m dd_jax.gan.train` fits to the training set first (a conditional VAE's
decoder, minutes on CPU; see dd_jax/gan/train.py); images are resized to 28 px.
Distillation: MTT's Fashion-MNIST settings per IPC (fashion_mnist_mtt) with GLaD's
learning rates for w and f; H-PD runs 100 outer steps per layer from layer 1.
"""
from configs import common, variants
from configs.fashion_mnist_mtt import PER_IPC as MTT

PER_IPC = {ipc: MTT[ipc] for ipc in (1, 10)}


def dataset(config):
  config.data.name = "fashion_mnist"
  # H-PD's CAM net (a ResNet-18 trained here in place of the paper's ImageNet one): three
  # epochs, sized for a CPU (the base default, 20, for an accelerator)
  config.hpd.distance_epochs = 3


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, variants.hpd(layer=2))
