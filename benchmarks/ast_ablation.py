"""Fashion-MNIST AST measurements in the shape of the paper's Tables VII and VIII.

python benchmarks/ast_ablation.py --root=/tmp/ast_ablation [--ipc=1,10] [--arms=...]
  [--experts=2] [--epochs=6] [--skip-distill] [--kinds=sgd,momentum,smooth]
  [--train-per-class=0] [--iterations=500] [--syn-steps=20] [--eval-epochs-1=1000]

The budget flags shrink the whole study for one CPU session (every figure printed names
what it ran on): --train-per-class keeps that many real images of each class for the
experts and the distillation (the test set stays whole); --kinds trains only some expert
kinds, so two processes can train them side by side before the arms.

Part 1 (Table VII): experts of the same length with plain SGD, SGD + momentum 0.9 and
AST's smooth recipe (momentum + the CE scaled 0.5 -> 1 over 5 epochs + gradient penalty
mu 1, K 1, the lr halved after half of the epochs as AST's 25 of 50); the expert report prints each kind's final test accuracy and Avg_Var.

Part 2 (Table VIII): distillation on one budget (N=20, M=2, start epochs {0, 1}, 500
outer steps, lr_img 1000; IPC 10 takes 10 of its 100 images per inner step, as the PAD
ablation), adding AST's refinements one at a time: MTT on plain experts, + smooth
experts, + representative init, + balanced inner loss, + intermediate matching,
+ weight perturbation (= AST); each set evaluated by the protocol with 5 ConvNets, 1000
epochs at IPC 1 and --eval-epochs-10 (default 300) at IPC 10: on the PAD ablation's
budget the MTT set scored 76.01 +- 0.49 (2 nets) after 300 epochs and 76.22 +- 0.73
after 1000, and 300 epochs save ~20 min per IPC 10 arm on 2 cores. Every arm runs in
its own workdir under --root, so the script resumes.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

CONFIG = "configs/fashion_mnist_ast.py"
# Expert kinds: config variant flags on top of fashion_mnist_ast.
EXPERTS = {"sgd": ["smooth=0"], "momentum": ["smooth=0"], "smooth": []}
EXPERT_FLAGS = {"momentum": ["--config.expert.momentum=0.9"]}
PIECES = ("smooth", "init", "balance", "inter", "perturb")
ARMS = ("mtt", "+smooth", "+init", "+balance", "+inter", "+perturb")
# Optional arm (--arms=...,+inner): AST with the official code's inner momentum 0.9,
# whose student moves like the momentum experts it matches.
EXTRA = ("+inner",)
BUDGET = ["--config.distill.expert_epochs=2",
          "--config.distill.max_start_epoch=2", "--config.distill.lr_img=1000", "--config.distill.eval_every=0",
          "--config.distill.checkpoint_every=50", "--config.eval.batch_size=256"]
LR_LR = {1: 1e-7, 10: 1e-5}
BATCH_SYN = {1: 0, 10: 10}


def expert_flags(kind: str, root: str, num: int, epochs: int, ipc: int = 1,
                 train_per_class: int = 0) -> list[str]:
  variant = ",".join([f"ipc={ipc}", *EXPERTS[kind]])
  # AST halves the smooth experts' lr at epoch 25 of 50: here at half of --epochs
  step = [f"--config.expert.lr_step_after=({max(1, epochs // 2)},)"] if kind == "smooth" else []
  return [f"--config={CONFIG}:{variant}", *EXPERT_FLAGS.get(kind, []), *step,
          f"--config.expert.num_experts={num}", f"--config.expert.epochs={epochs}",
          f"--config.expert.dir={root}/experts_{kind}",
          f"--config.data.train_per_class={train_per_class}"]


def arm_flags(arm: str, ipc: int, root: str, num: int, epochs: int,
              eval_epochs: int = 1000, train_per_class: int = 0, iterations: int = 500,
              syn_steps: int = 20) -> list[str]:
  """Arm k switches on the first k pieces (cumulative, as the paper's Table VIII)."""
  on = set(PIECES[:ARMS.index(arm)]) if arm in ARMS else set(PIECES)
  variant = ",".join([f"ipc={ipc}"] + [f"{p}=0" for p in PIECES if p not in on])
  kind = "smooth" if "smooth" in on else "sgd"
  flags = expert_flags(kind, root, num, epochs, ipc, train_per_class)
  flags[0] = f"--config={CONFIG}:{variant}"
  inner = ["--config.distill.inner_momentum=0.9"] if arm == "+inner" else []
  return [*flags, *BUDGET, f"--config.distill.lr_lr={LR_LR[ipc]}",
          f"--config.distill.syn_steps={syn_steps}",
          f"--config.distill.iterations={iterations}",
          f"--config.distill.batch_syn={BATCH_SYN[ipc]}", *inner,
          f"--config.eval.epochs={eval_epochs}"]


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--root", default="/tmp/ast_ablation")
  p.add_argument("--ipc", default="1,10")
  p.add_argument("--arms", default=",".join(ARMS))
  p.add_argument("--experts", type=int, default=2, help="experts per kind")
  p.add_argument("--epochs", type=int, default=6, help="epochs per expert")
  p.add_argument("--skip-distill", action="store_true", help="part 1 only")
  p.add_argument("--eval-epochs-10", type=int, default=300,
                 help="evaluation epochs at IPC 10")
  p.add_argument("--eval-epochs-1", type=int, default=1000,
                 help="evaluation epochs at IPC 1 (the protocol's 1000)")
  p.add_argument("--kinds", default=",".join(EXPERTS), help="expert kinds to train")
  p.add_argument("--train-per-class", type=int, default=0,
                 help="real training images per class (0 = all)")
  p.add_argument("--iterations", type=int, default=500, help="outer steps per arm")
  p.add_argument("--syn-steps", type=int, default=20, help="student steps N per segment")
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:   # both expert kinds (1 x 4 epochs each), the mtt arm at IPC 1
    with tempfile.TemporaryDirectory(prefix="ast_ablation_smoke_") as root:
      args.root, args.ipc, args.arms, args.experts, args.epochs = root, "1", "mtt", 1, 4
      common.start_smoke(root)
      return study(args)
  study(args)


def study(args) -> None:
  os.makedirs(args.root, exist_ok=True)
  print(common.machine(), flush=True)
  kinds = args.kinds.split(",")
  unknown = [k for k in kinds if k not in EXPERTS]
  if unknown:
    sys.exit(f"--kinds: unknown {unknown}; use some of {', '.join(EXPERTS)}")
  for kind in kinds:
    secs = common.run_module(["dd_jax.experts", *expert_flags(kind, args.root, args.experts,
                                                              args.epochs, 1,
                                                              args.train_per_class),
                              f"--workdir={args.root}"],
                             os.path.join(args.root, f"experts_{kind}.log"))
    print(f"experts {kind}: {args.experts} x {args.epochs} epochs ({secs / 60:.1f} min "
          "this call; 0 when already trained)", flush=True)
  report = os.path.join(args.root, "report.md")
  if os.path.exists(report):
    os.remove(report)
  common.run_module(["dd_jax.experts.report", *[f"{args.root}/experts_{k}" for k in kinds]],
                    report)
  with open(report) as f:
    print(f.read(), flush=True)
  if args.skip_distill:
    return
  rows, arms = [], args.arms.split(",")
  unknown = [a for a in arms if a not in ARMS + EXTRA]
  if unknown:
    sys.exit(f"--arms: unknown {unknown}; use some of {', '.join(ARMS + EXTRA)}")
  for ipc in map(int, args.ipc.split(",")):
    for arm in arms:
      work = os.path.join(args.root, f"ipc{ipc}_{arm.lstrip('+')}")
      eval_epochs = args.eval_epochs_10 if ipc >= 10 else args.eval_epochs_1
      mean, std, t = common.distill_and_evaluate(
          work, arm_flags(arm, ipc, args.root, args.experts, args.epochs, eval_epochs,
                          args.train_per_class, args.iterations, args.syn_steps))
      rows.append((ipc, arm, mean, std, t))
      print(common.describe(ipc, arm, mean, std, t), flush=True)
  print("\n" + common.table(rows, arms))


if __name__ == "__main__":
  main()
