"""Distilled Fashion-MNIST sets evaluated plainly and with knowledge distillation.

python benchmarks/kd_eval.py --root=/tmp/kd --sets=/tmp/ast/ipc1_mtt,/tmp/ast/ipc10_mtt
  --teacher=/tmp/ast/experts_sgd [--train-per-class=1000] [--eval-epochs=300]
  [--temperature=4]
python benchmarks/kd_eval.py --smoke   (a smoke-sized run's set, in a temporary folder)

Each set (a run folder holding synset.npz) goes through `python -m dd_jax.evaluate` with
eval.kd on: the same 5 ConvNets, batches and augmentation train once on the labels (the
ordinary protocol) and once against the teacher's softened outputs (T^2 x KL at
--temperature); the teacher is expert 0's last epoch in --teacher, a net trained on the
real data. --train-per-class must be the data the sets were distilled from (the set's
metadata is checked against it). Each set resumes in <root>/<set folder name>.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402


def eval_flags(teacher: str, train_per_class: int, epochs: int, temperature: float
               ) -> list[str]:
  return ["--config=configs/fashion_mnist_mtt.py:ipc=1",
          f"--config.data.train_per_class={train_per_class}",
          f"--config.expert.dir={teacher}", "--config.eval.kd=True",
          f"--config.eval.kd_temperature={temperature}", f"--config.eval.epochs={epochs}",
          "--config.eval.batch_size=256"]


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--root", default="/tmp/kd")
  p.add_argument("--sets", default="", help="run folders holding synset.npz, comma-separated")
  p.add_argument("--teacher", default="", help="experts folder (expert 0's last epoch)")
  p.add_argument("--train-per-class", type=int, default=0,
                 help="real training images per class of the sets' data (0 = all)")
  p.add_argument("--eval-epochs", type=int, default=1000)
  p.add_argument("--temperature", type=float, default=4.0)
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:   # a smoke-sized MTT run's set, its expert 0 as the teacher
    with tempfile.TemporaryDirectory(prefix="kd_eval_smoke_") as root:
      common.start_smoke(root)
      args.root, args.sets = root, common.smoke_run(root)
      args.teacher = os.path.join(args.sets, "experts")
      return study(args)
  if not args.sets or not args.teacher:
    p.error("--sets and --teacher are required")
  study(args)


def study(args) -> None:
  os.makedirs(args.root, exist_ok=True)
  print(common.machine(), flush=True)
  lines = ["| set | images | plain | KD (T=%g) |" % args.temperature, "|---|---|---|---|"]
  for folder in args.sets.split(","):
    source = os.path.join(folder, "synset.npz")
    if not os.path.exists(source):
      sys.exit(f"--sets: {source} does not exist; give run folders holding synset.npz")
    name = os.path.basename(os.path.normpath(folder))
    work = os.path.join(args.root, name)
    arm = common.run_arm(work, eval_flags(args.teacher, args.train_per_class,
                                          args.eval_epochs, args.temperature),
                         source=source)
    r = arm["results"]["ConvNet"]
    with open(os.path.join(work, "eval_results.json")) as f:
      images = json.load(f)["images"]
    plain = f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}"
    kd = f"{100 * r['kd']['mean']:.2f} ± {100 * r['kd']['std']:.2f}"
    print(f"{name}: plain {plain}, KD {kd} ({arm['timing']['eval_s'] / 60:.1f} min, "
          f"CPU {arm['timing']['cpu_s'] / 60:.1f} min)", flush=True)
    lines.append(f"| {name} | {images} | {plain} | {kd} |")
  print("\n" + "\n".join(lines))


if __name__ == "__main__":
  main()
