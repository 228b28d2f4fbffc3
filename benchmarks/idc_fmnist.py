"""Fashion-MNIST IPC 10: IDC against SeqMatch-IDC on the same budget.

python benchmarks/idc_fmnist.py --root=/tmp/idc [--arms=idc,seqidc[,seqidc_warm]] [--iterations=2000]
  [--matches=100] [--train-per-class=0] [--eval-epochs=1000]

configs/fashion_mnist_idc.py (the official reproduce settings: multi-formation factor 2,
L1 kernel distance, 100 matches per outer step, 64 real images per class and match, the
net trained on 500 real images between matches, SGD momentum 0.5 on the images) at IPC 10:
`idc` condenses the 10 stored images per class in --iterations outer steps; `seqidc`
(variant seq=1) condenses 5 + 5 per class one subset after the other, the steps split
evenly, subset 1 frozen on the synthetic side of subset 2's matches; `seqidc_warm`
(seq=1,warm=1, not in the default arms) as the official seqmatch-idc code, subset 2's
matching nets starting from a net trained on subset 1 (one per 50 outer steps). Every set is
evaluated decoded (40 images per class) by 5 ConvNets with IDC's protocol
(eval.protocol "idc": batch 64, lr 0.01 x0.2 at 2/3 and 5/6, CutMix, its DSA);
SeqMatch-IDC also sequentially (a net on S1, then on S1+S2). The budget flags shrink
the study for one CPU session; each arm resumes in its own workdir.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

ARMS = ("idc", "seqidc", "seqidc_warm")


def arm_flags(arm: str, budget: argparse.Namespace) -> list[str]:
  """The arm's `dd_jax.main` flags; `budget` holds iterations, matches, train_per_class,
  eval_epochs."""
  b = budget
  flags = [f"--config.data.train_per_class={b.train_per_class}",
           f"--config.idc.matches={b.matches}", f"--config.eval.epochs={b.eval_epochs}",
           "--config.distill.eval_every=0", "--config.distill.checkpoint_every=10"]
  if arm == "idc":
    return ["--config=configs/fashion_mnist_idc.py:ipc=10",
            f"--config.distill.iterations={b.iterations}", *flags]
  half = b.iterations // 2
  variant = "ipc=10,seq=1" + (",warm=1" if arm == "seqidc_warm" else "")
  return [f"--config=configs/fashion_mnist_idc.py:{variant}",
          f"--config.seqmatch.iterations=({half},{b.iterations - half})", *flags]


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--root", default="/tmp/idc")
  p.add_argument("--arms", default="idc,seqidc")
  p.add_argument("--iterations", type=int, default=2000, help="outer steps in all")
  p.add_argument("--matches", type=int, default=100, help="matches per outer step")
  p.add_argument("--train-per-class", type=int, default=0,
                 help="real training images per class (0 = all)")
  p.add_argument("--eval-epochs", type=int, default=1000, help="evaluation epochs")
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:   # both arms, 2 outer steps of 2 matches (the subsets' split too)
    with tempfile.TemporaryDirectory(prefix="idc_smoke_") as root:
      args.root, args.matches, args.iterations = root, 2, 2
      common.start_smoke(root)
      return study(args)
  study(args)


def study(args) -> None:
  arms = args.arms.split(",")
  unknown = [a for a in arms if a not in ARMS]
  if unknown:
    sys.exit(f"--arms: unknown {unknown}; use some of {', '.join(ARMS)}")
  os.makedirs(args.root, exist_ok=True)
  print(common.machine(), flush=True)
  lines = ["| Fashion-MNIST IPC 10 | ordinary | sequential (after S1, after S1+S2) |",
           "|---|---|---|"]
  for arm in arms:
    work = os.path.join(args.root, arm)
    mean, std, t = common.distill_and_evaluate(work, arm_flags(arm, args))
    print(common.describe(10, arm, mean, std, t), flush=True)
    cell = common.sequential_cell(work)
    lines.append(f"| {arm} | {mean:.2f} ± {std:.2f} | {cell} |")
  print("\n" + "\n".join(lines))


if __name__ == "__main__":
  main()
