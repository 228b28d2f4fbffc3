"""Fashion-MNIST IPC 10: SeqMatch (K=2) against plain MTT on the same total budget.

python benchmarks/seqmatch_fmnist.py --root=/tmp/seqmatch [--experts=/tmp/fm1h/experts]
  [--mtt=/tmp/pad_ablation/ipc10_mtt] [--arms=mtt,seqmatch,seqmatch-shared]

The budget of the PAD ablation's MTT arm (benchmarks/pad_ablation.py: 3 plain-SGD
experts x 3 epochs, N=20, M=2, start epochs {0, 1}, 500 outer steps, lr_img 1000, 10
images per inner step): MTT distils the 100 images in 500 steps; SeqMatch distils 5 + 5
images per class in 250 + 250 steps (the frozen subset 1 joins its inner batches, still
10 images a step). Arm `seqmatch` is the paper's default (seqmatch.experts
"warm_start"): subset 2 matches its own experts, each started from a net trained on
subset 1 (the evaluation recipe, 1000 epochs) then trained on the real data as the
others, on start epochs {0, 1} of them. Arm `seqmatch-shared` (ours, what this study
measured before 2026-12) matches the one set of experts: subset 1 on start epoch 0,
subset 2 on the later start epoch 1. Every set: 5 ConvNets x 1000 epochs with the
ordinary protocol, and for SeqMatch also the sequential one (one net on S1 for 1000
epochs at lr_1, then S1+S2 for 1000 epochs at lr_2).

--mtt points at an existing MTT arm of the same budget (e.g. the PAD ablation's, or the
AST ablation's IPC 10 `mtt` arm run with the same budget flags) so it is not distilled
twice; each arm resumes in its own workdir. The budget flags (--train-per-class,
--iterations: the total, split evenly over the two subsets, --syn-steps, --eval-epochs,
--num-experts, --expert-epochs: the experts' count and length) shrink the study for one
CPU session.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, pad_ablation  # noqa: E402

ARMS = ("mtt", "seqmatch", "seqmatch-shared")
# arm -> (seqmatch.experts, min start epochs, max start epochs) per subset
WINDOWS = {"seqmatch": ("warm_start", "(0,0)", "(2,2)"),
           "seqmatch-shared": ("shared", "(0,1)", "(1,2)")}


def arm_flags(arm: str, experts: str, train_per_class: int = 0, iterations: int = 500,
              syn_steps: int = 20, eval_epochs: int = 1000, num_experts: int = 3,
              expert_epochs: int = 3) -> list[str]:
  budget = [f"--config.data.train_per_class={train_per_class}",
            f"--config.expert.num_experts={num_experts}",
            f"--config.expert.epochs={expert_epochs}",
            f"--config.distill.syn_steps={syn_steps}",
            f"--config.eval.epochs={eval_epochs}"]
  if arm == "mtt":
    return [*pad_ablation.arm_flags("mtt", 10, "", experts), *budget,
            f"--config.distill.iterations={iterations}"]
  experts_kind, low, high = WINDOWS[arm]
  half = iterations // 2
  return ["--config=configs/fashion_mnist_seqmatch.py:ipc=10", *pad_ablation.BUDGET,
          "--config.distill.lr_lr=1e-5", "--config.distill.batch_syn=10",
          f"--config.seqmatch.iterations=({half},{iterations - half})",
          f"--config.seqmatch.min_start_epochs={low}",
          f"--config.seqmatch.max_start_epochs={high}",
          f"--config.seqmatch.experts={experts_kind}",
          f"--config.expert.dir={experts}", *budget]


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--root", default="/tmp/seqmatch")
  p.add_argument("--experts", default="/tmp/fm1h/experts",
                 help="plain SGD experts of the budget (trained there when missing)")
  p.add_argument("--mtt", default="", help="workdir of an MTT arm of the same budget")
  p.add_argument("--arms", default="mtt,seqmatch")
  p.add_argument("--train-per-class", type=int, default=0,
                 help="real training images per class (0 = all)")
  p.add_argument("--iterations", type=int, default=500, help="outer steps in all")
  p.add_argument("--syn-steps", type=int, default=20, help="student steps N per segment")
  p.add_argument("--eval-epochs", type=int, default=1000,
                 help="evaluation epochs (each stage of the sequential protocol too)")
  p.add_argument("--num-experts", type=int, default=3, help="experts (of --experts)")
  p.add_argument("--expert-epochs", type=int, default=3, help="epochs per expert")
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:   # the seqmatch-shared arm (two subsets), its experts trained first
    with tempfile.TemporaryDirectory(prefix="seqmatch_smoke_") as root:
      args.root, args.arms, args.experts = root, "seqmatch-shared", os.path.join(root, "experts")
      args.iterations = 2   # split over the subsets, which the smoke sizes do not set
      common.start_smoke(root)
      return study(args)
  study(args)


def study(args) -> None:
  os.makedirs(args.root, exist_ok=True)
  print(common.machine(), flush=True)
  arms = args.arms.split(",")
  unknown = [a for a in arms if a not in ARMS]
  if unknown:
    sys.exit(f"--arms: unknown {unknown}; use some of {', '.join(ARMS)}")
  lines = ["| arm | ordinary | sequential (after S1, after S1+S2) |", "|---|---|---|"]
  for arm in arms:
    work = (args.mtt if arm == "mtt" and args.mtt else os.path.join(args.root, arm))
    mean, std, t = common.distill_and_evaluate(
        work, arm_flags(arm, args.experts, args.train_per_class, args.iterations,
                        args.syn_steps, args.eval_epochs, args.num_experts,
                        args.expert_epochs))
    print(common.describe(10, arm, mean, std, t), flush=True)
    cell = common.sequential_cell(work)
    if cell != "-":
      print(f"         sequential {cell}", flush=True)
    lines.append(f"| {arm} | {mean:.2f} ± {std:.2f} | {cell} |")
  print("\n" + "\n".join(lines))


if __name__ == "__main__":
  main()
