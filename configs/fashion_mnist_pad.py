"""Fashion-MNIST, PAD (DATM backbone + FIEX + FIEM), ConvNet-3, no ZCA.

Distil: python -m dd_jax.main --config=configs/fashion_mnist_pad.py:ipc=10 --workdir=/tmp/fmp
Variants: ipc=1|10|50, runlocal, fiex=0 / fiem=0 (ablations; both off = DATM).

PAD publishes no (Fashion-)MNIST settings: these are its CIFAR-10 rows of Table 10
(configs/cifar10_pad.py) without ZCA, with MTT's lr_img for unwhitened images (1000). The CPU ablation of the README
(benchmarks/pad_ablation.py) shrinks experts and steps to a one-hour budget.
"""
from configs import common, variants

_SHARED = {"lr_teacher": 0.01, "pix_init": "correct", "lr_img": 1_000.0}
PER_IPC = {
    1: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 4,
        "lr_lr": 1e-7, "batch_syn": 0, "lr_y": 5.0, "loss_threshold": 1.1,
        "param_mask_ratio": 0.0},
    10: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 20,
         "current_max_start_epoch": 10, "expansion_end": 1_000, "lr_lr": 1e-5,
         "batch_syn": 0, "lr_y": 2.0, "loss_threshold": 1.0, "param_mask_ratio": 0.25},
    50: {**_SHARED, "syn_steps": 80, "expert_epochs": 2, "max_start_epoch": 40,
         "current_max_start_epoch": 20, "expansion_end": 2_000, "lr_lr": 1e-5,
         "batch_syn": 0, "lr_y": 2.0, "loss_threshold": 1.0, "param_mask_ratio": 0.25},
}


def dataset(config):
  config.data.name = "fashion_mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, variants.pad(addition_end=20))
