"""Fashion-MNIST IPC 1 on the small offline prior: pixel MTT vs GLaD vs H-PD, the same
outer budget, evaluated across architectures (the paper's claim: the GAN prior
generalises better to unseen architectures).

python benchmarks/hpd_fmnist.py --root=/tmp/hpd --experts=/tmp/fm1h/experts
  --prior=/tmp/gan_prior/prior [--mtt=/tmp/pad_ablation/ipc1_mtt] [--arms=mtt,glad,hpd]
  [--models=ConvNet,AlexNet,VGG11,ResNet18]
python benchmarks/hpd_fmnist.py --smoke   (every arm on tiny data, a tiny prior, seconds)

The budget of the PAD ablation's IPC 1 MTT arm (benchmarks/pad_ablation.py: 3 plain-SGD
experts x 3 epochs, N=20, M=2, start epochs {0, 1}, 500 outer steps): pixel MTT at
lr_img 1000; GLaD at layer 2 of the prior's 5 (4 synthesis layers + ToRGB) with GLaD's
MTT learning rates (w 10, f 10,000), 500 steps; `hpd` as the paper (the configs'
default): two spaces of two layers from layer 1, 250 steps each, each space's best
latents by the class-relevant distance (a ResNet-18 trained here, 2 epochs) carried
on, the final set chosen by accuracy on 50 held-out training images per class (its
experts are trained without them, in <root>/experts_holdout); `hpd_code` as the
released code (variant code=1): 125 steps on each of layers 1..4, the last layer's
final latents. --prior is a trained prior folder (benchmarks/gan_prior.py writes
one; python -m dd_jax.gan.train too); --mtt an existing pixel MTT arm of this budget
(its synset.npz is evaluated here again, across architectures). Every set: 5 nets x
1000 epochs per architecture. Each arm resumes in <root>/<arm>. --step-time=K only times each arm's outer step
(K steps, no evaluation, in <root>/steptime). The budget flags
(--train-per-class, --iterations, --syn-steps, --eval-epochs, --num-experts,
--expert-epochs) shrink the study for one CPU session, as in ast_ablation.py.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, pad_ablation  # noqa: E402

ARMS = ("mtt", "glad", "hpd", "hpd_code")
MODELS = "ConvNet,AlexNet,VGG11,ResNet18"


# H-PD's layers on the small prior: 1..4 (4 synthesis layers + ToRGB), in spaces of
# two (the paper) or one (the released code).
HPD_LAYERS = 4
HPD_SPACES = {"hpd": HPD_LAYERS // 2, "hpd_code": HPD_LAYERS}


def distill_flags(arm: str, experts: str, prior: str, budget: argparse.Namespace) -> list[str]:
  """The arm's `dd_jax.main` flags on the budget: `budget` holds train_per_class,
  iterations (H-PD: split evenly over its layers), syn_steps, eval_epochs, num_experts,
  expert_epochs."""
  b = budget
  shared = [f"--config.data.train_per_class={b.train_per_class}",
            f"--config.expert.num_experts={b.num_experts}",
            f"--config.expert.epochs={b.expert_epochs}",
            f"--config.distill.syn_steps={b.syn_steps}",
            f"--config.distill.iterations={b.iterations}",
            f"--config.eval.epochs={b.eval_epochs}"]
  if arm == "mtt":
    return [*pad_ablation.arm_flags("mtt", 1, "", experts), *shared]
  variant = {"glad": "ipc=1,glad=1", "hpd": "ipc=1", "hpd_code": "ipc=1,code=1"}[arm]
  # the paper's H-PD holds 50 training images per class out: experts without them
  experts = holdout_experts(experts) if arm == "hpd" else experts
  flags = [f"--config=configs/fashion_mnist_hpd.py:{variant}", *pad_ablation.BUDGET,
           f"--config.distill.lr_lr={pad_ablation.LR_LR[1]}", f"--config.gan.dir={prior}",
           f"--config.expert.dir={experts}", *shared]
  if arm in HPD_SPACES:
    flags.append(f"--config.hpd.steps_per_layer={b.iterations // HPD_SPACES[arm]}")
    flags += getattr(b, "hpd_flags", [])
  if arm == "hpd":   # the CAM net (a ResNet-18): 2 epochs on the budget's data, for a CPU
    flags.append("--config.hpd.distance_epochs=2")
  return flags


def holdout_experts(experts: str) -> str:
  """Where the paper-H-PD arm's experts go (trained on the training set less the held-out
  images, the same budget), beside the shared ones."""
  return os.path.join(os.path.dirname(os.path.abspath(experts)), "experts_holdout")


def timed_steps(root: str, arm: str, experts: str, prior: str,
                budget: argparse.Namespace, steps: int) -> float:
  """Seconds per outer step of `arm` on the budget: `steps` steps logged one by one in
  <root>/steptime/<arm> (a fresh folder), the median gap between consecutive progress
  lines from the third on (compilation and H-PD's layer changes left out)."""
  work = os.path.join(root, "steptime", arm)
  shutil.rmtree(work, ignore_errors=True)
  os.makedirs(os.path.dirname(work), exist_ok=True)
  if os.path.exists(work + ".log"):
    os.remove(work + ".log")
  timed = argparse.Namespace(**{**vars(budget), "iterations": steps})
  flags = [*distill_flags(arm, experts, prior, timed), "--config.distill.log_every=1",
           "--config.distill.eval_every=0"]
  common.run_module(["dd_jax.main", *flags, f"--workdir={work}"], work + ".log")
  stamps = []
  with open(work + ".log") as f:
    for line in f:
      if " steps/s" in line:   # absl's prefix: I1201 23:21:18.542939 ...
        clock = line.split()[1]
        h, m, sec = clock.split(":")
        stamps.append(3600 * int(h) + 60 * int(m) + float(sec))
  gaps = [(b - a) % 86400 for a, b in zip(stamps[2:], stamps[3:])]   # past midnight too
  return statistics.median(gaps) if gaps else float("nan")


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--root", default="")
  p.add_argument("--experts", default="", help="plain SGD experts of the ablation budget")
  p.add_argument("--prior", default="", help="a trained prior folder")
  p.add_argument("--mtt", default="", help="an existing pixel MTT arm (its synset.npz)")
  p.add_argument("--arms", default=",".join(ARMS))
  p.add_argument("--models", default=MODELS)
  p.add_argument("--train-per-class", type=int, default=0,
                 help="real training images per class (0 = all)")
  p.add_argument("--iterations", type=int, default=500,
                 help="outer steps per arm (H-PD: split evenly over its spaces)")
  p.add_argument("--syn-steps", type=int, default=20, help="student steps N per segment")
  p.add_argument("--eval-epochs", type=int, default=1000, help="evaluation epochs")
  p.add_argument("--num-experts", type=int, default=3, help="experts (of --experts)")
  p.add_argument("--expert-epochs", type=int, default=3, help="epochs per expert")
  p.add_argument("--step-time", type=int, default=0,
                 help="only time each arm's outer step over this many steps (no evaluation)")
  common.add_smoke(p)
  args = p.parse_args()
  if args.smoke:
    with tempfile.TemporaryDirectory(prefix="hpd_fmnist_smoke_") as root:
      smoke(args, root)
      return study(args)
  if not (args.root and args.experts and args.prior):
    p.error("--root, --experts and --prior are required")
  study(args)


def smoke(args: argparse.Namespace, root: str) -> None:
  """`args` for a --smoke run in `root`: a 2-step prior at runlocal's generator size
  but with the study's HPD_LAYERS synthesis layers, every arm for 4 outer steps of 2 student steps on 1 expert of 3 epochs (trained by
  the first arm), 10 of the tiny data's 50 images per class held out (8 per class for
  H-PD's distance), 2 evaluation epochs on two architectures."""
  common.start_smoke(root, (*common.smoke_gan(), f"--config.gan.num_layers={HPD_LAYERS}",
                            "--config.data.holdout_per_class=10"))
  args.hpd_flags = ["--config.hpd.real_per_class=8"]   # the H-PD arms' only
  common.run_module(["dd_jax.gan.train", "--config=configs/fashion_mnist_hpd.py:ipc=1",
                     "--config.gan.train_steps=2", f"--workdir={root}/gan"],
                    os.path.join(root, "gan.log"))
  args.root, args.experts, args.prior = root, os.path.join(root, "experts"), f"{root}/gan/prior"
  args.models, args.iterations, args.syn_steps, args.eval_epochs = "ConvNet,AlexNet", 4, 2, 2
  args.num_experts, args.expert_epochs = 1, 3


def study(args: argparse.Namespace) -> None:
  os.makedirs(args.root, exist_ok=True)
  print(common.machine(), flush=True)
  if args.step_time:
    for arm in args.arms.split(","):
      secs = timed_steps(args.root, arm, args.experts, args.prior, args, args.step_time)
      print(f"{arm:<5} {secs:.2f} s per outer step (median of {args.step_time - 3} gaps; "
            f"load avg now {os.getloadavg()[0]:.2f})", flush=True)
    return
  table = {}
  for arm in args.arms.split(","):
    if arm not in ARMS:
      sys.exit(f"--arms: unknown arm {arm!r}; use {', '.join(ARMS)}")
    source = os.path.join(args.mtt, "synset.npz") if arm == "mtt" and args.mtt else ""
    t = time.perf_counter()
    quoted = ",".join(f"'{m}'" for m in args.models.split(","))
    table[arm] = common.run_arm(os.path.join(args.root, arm),
                                distill_flags(arm, args.experts, args.prior, args),
                                (f"--config.eval.models=({quoted},)",), source)
    tm = table[arm]["timing"]
    print(f"{arm:<5} distil {tm['distill_s'] / 60:.1f} min ({common.step_seconds(args.root, arm)}), "
          f"eval {tm['eval_s'] / 60:.1f} min, CPU {tm['cpu_s'] / 60:.1f} min "
          f"(this call {time.perf_counter() - t:.0f} s)", flush=True)
  models = args.models.split(",")
  print("| IPC 1 | " + " | ".join(models) + " | mean of the others |")
  print("| --- |" + " --- |" * (len(models) + 1))
  for arm, row in table.items():
    r = row["results"]
    cells = [f"{100 * r[m]['mean']:.2f} ± {100 * r[m]['std']:.2f}" for m in models]
    others = [100 * r[m]["mean"] for m in models[1:]]
    cross = f"{sum(others) / len(others):.2f}" if others else "-"
    print(f"| {arm} | " + " | ".join(cells) + f" | {cross} |")


if __name__ == "__main__":
  main()
