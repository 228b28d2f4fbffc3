"""CIFAR-10, H-PD / GLaD on a converted StyleGAN-XL (for accelerators). Data from tfds.

Convert:  python -m dd_jax.gan.convert cifar10.pkl /data/sgxl_cifar10   (the official
          StyleGAN-XL CIFAR-10 network; read without running its code)
Distil:   python -m dd_jax.main --config=configs/cifar10_hpd.py:ipc=1,prior=/data/sgxl_cifar10 \
            --workdir=/tmp/c10_hpd
Variants: ipc=1|10, glad=1 (GLaD at the prior's middle layer), method=dc|dm, prior=<folder>|random (default: the small prior trained here),
runlocal.

Settings: GLaD's MTT recipe (N=20, M=3, max start epoch 5, lr_w 10, lr_f 10,000, SGD
momentum 0.5; DC 1e-3/1, DM 1e-2/10), ConvNet-3, ZCA off (GLaD renders to normalised
pixels); H-PD 100 steps per layer (DM 20) from layer 1.
"""
from configs import common, variants

PER_IPC = {
    1: {"syn_steps": 20, "expert_epochs": 3, "max_start_epoch": 5, "lr_lr": 1e-6,
        "lr_teacher": 0.01},
    10: {"syn_steps": 20, "expert_epochs": 3, "max_start_epoch": 5, "lr_lr": 1e-6,
         "lr_teacher": 0.01},
}


def dataset(config):
  config.data.name = "cifar10"
  # the offline default: the small prior fitted here; prior=<folder> for StyleGAN-XL


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, variants.hpd(layer=-1))
