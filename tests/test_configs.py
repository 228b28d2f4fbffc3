"""Every experiment config loads for each of its variants and passes validation."""
import importlib

import pytest

from dd_jax.distill import run

FILES = ("fashion_mnist_mtt", "mnist_mtt", "cifar10_mtt", "cifar100_mtt",
         "tiny_imagenet_mtt")


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("variant", ["ipc=1", "ipc=10", "ipc=50", "runlocal",
                                     "ipc=10,runlocal"])
def test_config_variants_are_valid(name, variant):
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config(variant)
  run.validate(config)
  ipc = int(variant.split("ipc=")[1].split(",")[0]) if "ipc=" in variant else 1
  assert config.distill.ipc == ipc
  if "runlocal" in variant:
    assert config.distill.iterations <= 10 and config.expert.num_experts <= 2
  else:
    assert config.distill.iterations == 5_000 and config.expert.epochs == 50
    settings = module.PER_IPC[ipc]
    assert all(config.distill[k] == v for k, v in settings.items() if "." not in k)
  with pytest.raises(AttributeError):   # locked: a typo in an override is an error
    config.distill.syn_stepz = 3


def test_cifar10_follows_the_authors_settings():
  from configs import cifar10_mtt
  c = cifar10_mtt.get_config("ipc=1")
  assert (c.distill.syn_steps, c.distill.expert_epochs, c.distill.max_start_epoch,
          c.distill.lr_img, c.distill.lr_lr, c.data.zca) == (50, 2, 2, 100.0, 1e-7, True)
  assert cifar10_mtt.get_config("ipc=50").data.zca is False


def test_unknown_ipc_variant_is_explained():
  from configs import cifar10_mtt
  with pytest.raises(ValueError, match="no settings for ipc=7"):
    cifar10_mtt.get_config("ipc=7")
