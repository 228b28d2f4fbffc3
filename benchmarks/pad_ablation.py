"""Fashion-MNIST ablation in the shape of PAD's Table 3b: MTT, DATM, DATM+FIEX, DATM+FIEM,
PAD (both) at IPC 1 and 10, on the CPU budget of the README's MTT figure (3 experts x 3
epochs of plain SGD, N=20, M=2, start epochs {0, 1}, 500 outer steps; at IPC 10 each
inner step takes 10 of the 100 images, so a step costs what an IPC 1 step does), each set
evaluated with the protocol (5 ConvNets, 1000 epochs).

python benchmarks/pad_ablation.py --root=/tmp/pad_ablation [--ipc=1,10] [--arms=...]
  [--experts=/tmp/fm1h/experts]   (reuse plain experts trained with that budget)
python benchmarks/pad_ablation.py --smoke   (the mtt arm at IPC 1, tiny, in a temporary root)

Every arm is a `python -m dd_jax.main` run plus a `python -m dd_jax.evaluate` of its
synthetic set, in its own workdir under --root, so an interrupted ablation resumes (a
finished arm is skipped). FIEX's EL2N scores (2 models x 1 epoch: the budget) and its
scheduled experts are computed once and shared by the FIEX and PAD arms.

Choices for the budget, stated with the figures: experts use plain SGD in every arm
(PAD's command uses GSAM, twice the cost per epoch); with 3-epoch experts the scheduler
only runs its addition phase (75% -> 100% of each class over epochs 0..2); FIEM's alpha
is 0.25 at IPC 1 (the paper's CIFAR-10 alpha there is 0, which would repeat DATM) and
0.5 at IPC 10; an arm name may end in @<alpha> to set it (e.g. `pad@0.25`, the tuning
arm).
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

BUDGET = ["--config.expert.num_experts=3", "--config.expert.epochs=3",
          "--config.expert.sam=none", "--config.distill.syn_steps=20",
          "--config.distill.expert_epochs=2", "--config.distill.max_start_epoch=2",
          "--config.distill.iterations=500", "--config.distill.lr_img=1000",
          "--config.distill.eval_every=0",
          "--config.distill.checkpoint_every=50", "--config.eval.batch_size=256"]
LR_LR = {1: 1e-7, 10: 1e-5}
# Synthetic images per inner step: IPC 10 steps on 10 of its 100 images so that an outer
# step costs what an IPC 1 step does (the whole set per inner step: ~30 s a step here).
BATCH_SYN = {1: 0, 10: 10}
ALPHA = {1: 0.25, 10: 0.5}
ARMS = ("mtt", "datm", "datm+fiex", "datm+fiem", "pad")


def arm_flags(arm: str, ipc: int, root: str, plain_experts: str) -> list[str]:
  arm, _, alpha = arm.partition("@")
  alpha = float(alpha) if alpha else ALPHA[ipc]
  if arm == "mtt":
    config = f"configs/fashion_mnist_mtt.py:ipc={ipc}"
    extra = []
  else:
    fiex, fiem = "fiex" in arm or arm == "pad", "fiem" in arm or arm == "pad"
    config = f"configs/fashion_mnist_pad.py:ipc={ipc},fiex={int(fiex)},fiem={int(fiem)}"
    # DATM's window on this short trajectory: upper bound 1 -> 2 over the first half.
    extra = ["--config.distill.current_max_start_epoch=1",
             "--config.distill.expansion_end=250"]
    if fiem:
      extra.append(f"--config.distill.param_mask_ratio={alpha}")
      extra.append("--config.distill.param_mask=depth")
    if fiex:
      extra += ["--config.expert.schedule.addition_end=2",
                "--config.expert.schedule.removal_epochs=(2,)",
                "--config.expert.schedule.removal_fractions=(0.1,)",
                f"--config.expert.schedule.scores={root}/scores/scores/el2n.npz",
                f"--config.expert.dir={root}/experts_fiex"]
  experts = [] if any("expert.dir" in f for f in extra) else [
      f"--config.expert.dir={plain_experts or root + '/experts_plain'}"]
  return [f"--config={config}", *BUDGET, f"--config.distill.lr_lr={LR_LR[ipc]}",
          f"--config.distill.batch_syn={BATCH_SYN[ipc]}",
          *extra, *experts]


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--root", default="/tmp/pad_ablation")
  p.add_argument("--ipc", default="1,10")
  p.add_argument("--arms", default=",".join(ARMS))
  p.add_argument("--experts", default="", help="plain SGD experts of the same budget")
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:   # the mtt arm at IPC 1
    with tempfile.TemporaryDirectory(prefix="pad_ablation_smoke_") as root:
      args.root, args.ipc, args.arms = root, "1", "mtt"
      common.start_smoke(root)
      return study(args)
  study(args)


def study(args) -> None:
  os.makedirs(args.root, exist_ok=True)
  print(common.machine(), flush=True)
  scores = os.path.join(args.root, "scores", "scores", "el2n.npz")
  arms = args.arms.split(",")
  unknown = [a for a in arms if a.partition("@")[0] not in ARMS]
  if unknown:
    sys.exit(f"--arms: unknown {unknown}; use some of {', '.join(ARMS)} (optionally @alpha)")
  if any("fiex" in a or a.startswith("pad") for a in arms) and not os.path.exists(scores):
    secs = common.run_module(
        ["dd_jax.experts.score", "--config=configs/fashion_mnist_pad.py",
         f"--workdir={args.root}/scores", "--config.score.num_models=2",
         "--config.score.epochs=1"], os.path.join(args.root, "scores.log"))
    print(f"EL2N scores (2 models x 1 epoch): {secs:.0f}s", flush=True)
  rows = []
  for ipc in map(int, args.ipc.split(",")):
    for arm in arms:
      work = os.path.join(args.root, f"ipc{ipc}_{arm}")
      mean, std, t = common.distill_and_evaluate(
          work, arm_flags(arm, ipc, args.root, args.experts))
      rows.append((ipc, arm, mean, std, t))
      print(common.describe(ipc, arm, mean, std, t), flush=True)
  print("\n" + common.table(rows, arms))


if __name__ == "__main__":
  main()
