"""Fashion-MNIST, AST (smooth experts + representative init + balanced inner loss +
intermediate matching + weight perturbation), ConvNet-3, no ZCA.

Distil: python -m dd_jax.main --config=configs/fashion_mnist_ast.py:ipc=10 --workdir=/tmp/fma
Report: python -m dd_jax.experts.report /tmp/fma/experts   (expert accuracy, Avg_Var)
Variants: ipc=1|10|50, runlocal; smooth=0 / init=0 / balance=0 / inter=0 / perturb=0
(ablations; all off = MTT), code=1 (the official code's values), pad=1 (with PAD's
modules).

AST publishes no (Fashion-)MNIST settings: MTT's Fashion-MNIST table (its CIFAR-10
values without ZCA) with AST's 50-epoch experts.
"""
from configs import common, fashion_mnist_mtt, variants

PER_IPC = fashion_mnist_mtt.PER_IPC


def dataset(config):
  config.data.name = "fashion_mnist"


def get_config(arg=None):
  return common.make(arg, PER_IPC, dataset,
                     variants.when("pad", variants.pad(addition_end=20)), variants.ast)
