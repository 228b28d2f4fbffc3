"""The small offline GAN prior on Fashion-MNIST: training time, reconstruction, and
whether its samples show their class.

python benchmarks/gan_prior.py --root=/tmp/gan_prior --experts=/tmp/fm1h/experts
  [--steps=1000] [--flag=--config.gan.margin=10 ...]
python benchmarks/gan_prior.py --smoke   (2 steps on tiny data, a smoke run's experts)

Trains the prior with `python -m dd_jax.gan.train` (configs/fashion_mnist_hpd.py, the
flags appended), then renders 100 samples per class from z ~ N(0, I) and the class's
average w, and classifies them with a network trained on the real data (the last
snapshot of the first expert in --experts): the accuracy says how much class the
prior's samples carry (chance: 10%). Prints seconds per training step and the pixel MSE
of the reconstructions, from the prior's train.json.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402


def class_accuracy(prior_dir: str, experts: str, config, per_class: int = 100) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from dd_jax import models
  from dd_jax.data import pipeline
  from dd_jax.experts import store
  from dd_jax.gan import generator

  prepared = pipeline.prepare(config.data)
  spec, params = generator.load(prior_dir)
  gen = generator.Generator(spec, conv_impl=config.model.conv_impl)
  reader = store.ExpertReader(experts)
  model = models.from_config(config.model, prepared.num_classes)
  x0 = jnp.asarray(prepared.x_train[:1])
  abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x0, train=False))
  net = reader.params(reader.experts[0], reader.epochs, abstract["params"])
  labels = jnp.repeat(jnp.arange(prepared.num_classes), per_class)
  z = jax.random.normal(jax.random.PRNGKey(123), (len(labels), spec["z_dim"]))
  ws = gen.mapping(params, z, labels)
  avg = gen.mapping(params, z, labels, psi=0.0)
  out = {}
  for name, latents in (("samples", ws), ("class_average", avg)):
    pixels = gen.to_pixels(gen.synthesize(params, latents), prepared.x_train.shape[1:3],
                           prepared.x_train.shape[3])
    x = jnp.asarray(prepared.pre.apply(np.clip(np.asarray(pixels), 0, 1)))
    logits = model.apply({"params": net}, x, train=False)
    out[name] = float(jnp.mean(jnp.argmax(logits, 1) == labels))
  real = prepared.x_train[:1000]
  logits = model.apply({"params": net}, jnp.asarray(real), train=False)
  out["real"] = float(jnp.mean(jnp.argmax(logits, 1) == jnp.asarray(prepared.y_train[:1000])))
  return out


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--root", default="")
  p.add_argument("--experts", default="", help="experts trained on the real data")
  p.add_argument("--steps", type=int, default=1000)
  p.add_argument("--flag", action="append", default=[], help="extra config flags")
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:
    with tempfile.TemporaryDirectory(prefix="gan_prior_smoke_") as root:
      common.start_smoke(root)
      args.root, args.steps = root, 2
      args.flag += ["--config.data.holdout_per_class=0",   # H-PD's 50 of the tiny 50
                    *common.smoke_gan()]
      args.experts = os.path.join(common.smoke_run(root), "experts")
      return study(args, smoke=True)
  if not args.root or not args.experts:
    p.error("--root and --experts are required")
  study(args)


def study(args, smoke: bool = False) -> None:
  os.makedirs(args.root, exist_ok=True)
  flags = ["--config=configs/fashion_mnist_hpd.py:ipc=1",
           f"--config.gan.train_steps={args.steps}", *args.flag]
  secs = common.run_module(["dd_jax.gan.train", *flags, f"--workdir={args.root}"],
                           os.path.join(args.root, "train.log"))
  with open(os.path.join(args.root, "prior", "train.json")) as f:
    t = json.load(f)

  from configs import fashion_mnist_hpd   # the data and the classifier's model fields
  config = fashion_mnist_hpd.get_config("ipc=1")
  acc = class_accuracy(os.path.join(args.root, "prior"), args.experts,
                       common.smoke_config(config, args.root) if smoke else config)
  print(common.machine())
  print(f"prior training: {args.steps} steps in {t['seconds']:.0f} s "
        f"({t['seconds'] / max(args.steps, 1):.2f} s/step; process {secs:.0f} s), "
        f"pixel MSE {t['mse_before']:.4f} -> {t['mse_after']:.4f}")
  print(f"expert accuracy on prior samples (z ~ N(0, I)) {100 * acc['samples']:.1f}%, "
        f"on class-average latents {100 * acc['class_average']:.1f}%, "
        f"on real training images {100 * acc['real']:.1f}% (chance 10%)")


if __name__ == "__main__":
  main()
