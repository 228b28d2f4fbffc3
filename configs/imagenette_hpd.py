"""ImageNette (10 ImageNet classes, 128 px), H-PD / GLaD on a converted StyleGAN-XL
ImageNet-128 (for accelerators). Data from tfds (imagenette/320px-v2, resized).

Convert:  python -m dd_jax.gan.convert imagenet128.pkl /data/sgxl_in128
Distil:   python -m dd_jax.main --config=configs/imagenette_hpd.py:ipc=1,prior=/data/sgxl_in128 \
            --workdir=/tmp/inette_hpd
Variants: ipc=1|10, glad=1 (GLaD at the prior's middle layer: 12 of
ImageNet-128's 26, its default), method=dc|dm, runlocal.

Settings: GLaD's (ConvNet-5 at 128 px, N=20, M=3, max start epoch 5, lr_w 10, lr_f
10,000; 1000 outer steps) with the prior's ImageNet classes of ImageNette's ten
(gan.class_map); H-PD 100 steps per layer (DM 20) from layer 1.
"""
from configs import common, variants

PER_IPC = {
    1: {"syn_steps": 20, "expert_epochs": 3, "max_start_epoch": 5, "lr_lr": 1e-6,
        "lr_teacher": 0.01, "iterations": 1000},
    10: {"syn_steps": 20, "expert_epochs": 3, "max_start_epoch": 5, "lr_lr": 1e-6,
         "lr_teacher": 0.01, "iterations": 1000},
}
# tench, English springer, cassette player, chain saw, church, French horn, garbage
# truck, gas pump, golf ball, parachute: their ImageNet-1k indices.
IMAGENETTE_CLASSES = (0, 217, 482, 491, 497, 566, 569, 571, 574, 701)


def dataset(config):
  config.data.name = "imagenette"
  config.data.image_size = 128
  config.model.depth = 5
  # the offline default: the small prior fitted here; prior=<converted ImageNet-128>
  config.gan.resolution = 128
  config.gan.class_map = IMAGENETTE_CLASSES


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset, variants.hpd(layer=-1))
