"""Distillation parity with the official code at equal budget (issue 26): MTT, DATM/PAD, AST.

  python benchmarks/official_parity.py --official=/tmp/mtt-distillation --root=/tmp/op \
      --ipc=1 --seeds=0,1,2 [--iterations=200 --syn-steps=10 --expert-epochs=2 ...]
  python benchmarks/official_parity.py --method=pad --official=/tmp/PAD \
      --official-eval=/tmp/PAD --root=/tmp/op_pad --experts=/tmp/op/experts --ipc=10 \
      [--loss-mask=0.25 --lr-y=2 --current-max-start-epoch=1 --expansion-end=100 ...]

--method=mtt runs the MTT checkout's distill.py; --method=pad the PAD checkout's
distill/PAD.py (DATM's soft labels, learned by SGD at --lr-y, momentum 0.9, from the
first expert's last-epoch logits on the initial images; its sequential start-epoch window;
updates skipped above --threshold; with --loss-mask=r its per-parameter loss mask, which
the released script gates behind `loss_threshold_low < 1`, set here) against
configs/fashion_mnist_pad.py with fiex=0 (the experts are shared: FIEX is expert-side),
pix_init "real", distill.param_mask "loss" at ratio r (none at 0), one label expert.
--method=ast runs the AST checkout's distill.py with --weight_perturb --agg_middle_loss
--balance_loss (its README commands; inner momentum `mom` 0.9, its default) against
configs/fashion_mnist_ast.py with code=1 (the code's perturbation, log base and inner
momentum), smooth=0 (experts are shared: smoothness is expert-side) and init=0 (the same
real initial images on both sides: its `avg` init is not compared).
PAD's script seeds itself with 42 whatever the run; here with the seed. Soft-label sets
are evaluated by PAD's evaluate_synset (--official-eval: a PAD checkout; its soft
cross-entropy) at batch --batch-train (PAD's YAMLs: 128).

Fashion-MNIST, both sides from the same experts (ours, trained by the first run and
exported with dd_jax.interop to the official buffer layout) and, per seed, the same
initial images (our `pix_init="real"` draw for that seed: the official run's dataset is
handed exactly those images, so its `get_images` picks them), at the same N, M, start
window, lr_img, lr_lr, lr_teacher, batch_syn and iterations (the official loop updates at
it = 0..Iteration, so ours runs --iterations + 1 steps). The official distill.py runs
unchanged from a checkout (wandb and torchvision stood in for; its get_dataset replaced
by one returning our preprocessed data), one subprocess per seed, torch seeded with the
seed. Each final set is then evaluated by both protocols (benchmarks/eval_parity.py's
"ours" and "official" arms, 5 nets each). Printed and written to <root>/table.md: per
side and protocol the mean ± std over seeds (of each seed's 5-net mean), the pass
criteria with their figures (`verdict`), seconds per outer step (each side's median
wall time between consecutive steps' metrics) and peak RSS per side (whole process: ours
includes training the experts in the first seed's run); <root>/losses.png has the matching-loss curves side by
side. Every step resumes from <root>.

Official distill.py on CPU: it draws start epochs with np.random.randint(0, T) and one
expert per step, as ours; it evaluates at iterations 0 and the last (1 net x 1 epoch here:
the real evaluation is the one after).
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks import common, eval_parity  # noqa: E402

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def method_flags(a) -> list[str]:
  """The config of --method on our side, aligned with what the official script does."""
  if a.method == "mtt":
    return [f"--config=configs/fashion_mnist_mtt.py:ipc={a.ipc}"]
  if a.method == "ast":
    return [f"--config=configs/fashion_mnist_ast.py:ipc={a.ipc},code=1,smooth=0,init=0"]
  return [f"--config=configs/fashion_mnist_pad.py:ipc={a.ipc},fiex=0,"
          f"fiem={int(a.loss_mask > 0)}",
          "--config.expert.sam=none", "--config.distill.pix_init=real",
          "--config.distill.label_experts=1", "--config.distill.label_epoch=-1",
          f"--config.distill.lr_y={a.lr_y}", "--config.distill.label_momentum=0.9",
          f"--config.distill.current_max_start_epoch={a.current_max_start_epoch}",
          f"--config.distill.expansion_end={a.expansion_end}",
          f"--config.distill.loss_threshold={a.threshold}",
          f"--config.distill.param_mask={'loss' if a.loss_mask > 0 else 'none'}",
          f"--config.distill.param_mask_ratio={a.loss_mask}"]


def experts_dir(a) -> str:
  return a.experts or os.path.join(a.root, "experts")


def budget_flags(a, seed: int) -> list[str]:
  return [*method_flags(a),
          f"--config.data.train_per_class={a.train_per_class}",
          f"--config.expert.num_experts={a.num_experts}",
          f"--config.expert.epochs={a.experts_epochs}",
          f"--config.expert.dir={experts_dir(a)}",
          "--config.expert.seed=0",   # one set of experts for every distillation seed
          f"--config.distill.syn_steps={a.syn_steps}",
          f"--config.distill.expert_epochs={a.expert_epochs}",
          f"--config.distill.max_start_epoch={a.max_start_epoch}",
          # the official loop updates at it = 0..Iteration: Iteration + 1 steps
          f"--config.distill.iterations={a.iterations + 1}",
          f"--config.distill.lr_img={a.lr_img}", f"--config.distill.lr_lr={a.lr_lr}",
          f"--config.distill.lr_teacher={a.lr_teacher}",
          f"--config.distill.batch_syn={a.batch_syn}",
          f"--config.distill.expert_order={a.expert_order}",
          *(["--config.distill.dsa_strategy=none"] if a.no_dsa else []),
          "--config.distill.eval_every=0", "--config.distill.log_every=1",
          f"--config.seed={seed}"]


def timed(cmd: list[str], log: str) -> dict:
  """Runs `cmd` from the repository root; its seconds and peak RSS (MiB)."""
  t = time.perf_counter()
  with open(log, "a") as f:
    proc = subprocess.Popen(cmd, cwd=ROOT_DIR, stdout=f, stderr=f)
    _, status, usage = os.wait4(proc.pid, 0)
  if status:
    sys.exit(f"failed ({status}): {' '.join(cmd)}; see {log}")
  return {"seconds": time.perf_counter() - t, "peak_mib": usage.ru_maxrss / 1024}


def prepared_data(a):
  from configs import fashion_mnist_mtt
  from dd_jax.data import pipeline
  config = fashion_mnist_mtt.get_config(f"ipc={a.ipc}")
  config.data.train_per_class = a.train_per_class
  return config, pipeline.prepare(config.data)


def run_ours(a, seed: int) -> dict:
  work = os.path.join(a.root, f"ours_{seed}")
  done = os.path.join(work, "timing.json")
  if not os.path.exists(done):
    os.makedirs(work, exist_ok=True)
    t = timed([sys.executable, "-m", "dd_jax.main", *budget_flags(a, seed),
               f"--workdir={work}"], work + ".log")
    from dd_jax import report
    loss = report.read_scalars(work).get("distill/loss")
    t["loss"] = ([[int(s), float(v)] for s, v in zip(loss.steps, loss.values)]
                 if loss is not None else [])
    with open(done, "w") as f:
      json.dump(t, f)
  with open(done) as f:
    t = json.load(f)
  t["step_s"] = median_step_seconds(work)
  return t


def median_step_seconds(work: str) -> float:
  """The median wall time between consecutive outer steps (the metrics' wall times: the
  first step's compilation left out, as the official side's median gap does)."""
  from dd_jax import report
  loss = report.read_scalars(work).get("distill/loss")
  if loss is None or len(loss.steps) < 2:
    return float("nan")
  gaps = np.diff(loss.wall) / np.maximum(np.diff(loss.steps), 1)
  return float(np.median(gaps))


def buffers_folder(a) -> str:
  return os.path.join(a.root, "buffers", "FashionMNIST", "ConvNet")


def export_buffers(a) -> str:
  """Our experts in the official layout: <root>/buffers/FashionMNIST/ConvNet."""
  from dd_jax import interop
  folder = buffers_folder(a)
  if not os.path.exists(os.path.join(folder, "replay_buffer_0.pt")):
    interop.export_experts(experts_dir(a), folder)
  return os.path.join(a.root, "buffers")


def run_official(a, seed: int) -> dict:
  work = os.path.join(a.root, f"official_{seed}")
  done = os.path.join(work, "timing.json")
  if not os.path.exists(done):
    os.makedirs(work, exist_ok=True)
    t = timed([sys.executable, os.path.abspath(__file__), "--run-official",
               f"--seed={seed}", *sys.argv[1:]], work + ".log")
    with open(os.path.join(work, "run.json")) as f:
      t.update(json.load(f))
    with open(done, "w") as f:
      json.dump(t, f)
  with open(done) as f:
    return json.load(f)


def official_args(a, seed: int, buffers: str) -> types.SimpleNamespace:
  """The official script's arguments on the budget (its evaluation skipped or shrunk:
  the real one is done afterwards)."""
  common_args = dict(
      dataset="FashionMNIST", subset="imagenette", model="ConvNet", res=128, ipc=a.ipc,
      eval_mode="S", num_eval=1, epoch_eval_train=1, Iteration=a.iterations,
      lr_img=a.lr_img, lr_lr=a.lr_lr, lr_teacher=a.lr_teacher, lr_init=a.lr_teacher,
      batch_real=256, batch_syn=a.batch_syn or None, batch_train=256, pix_init="real",
      dsa_strategy="color_crop_cutout_flip_scale_rotate", data_path="",
      buffer_path=buffers, expert_epochs=a.expert_epochs, syn_steps=a.syn_steps,
      max_start_epoch=a.max_start_epoch, zca=False, load_all=False, no_aug=False,
      texture=False, canvas_size=2, canvas_samples=1, max_files=None, max_experts=None,
      force_save=False)
  if a.method in ("mtt", "ast"):   # AST's distill.py is MTT's with its switches added
    ast = dict(mom=0.9, balance_loss=True, agg_middle_loss=True,
               adaptive_middle_loss=False, ignore_graph=False, weight_perturb=True,
               align_loss=False, align_alpha=0.1, align_bs=500)
    # --no-dsa: the official switch --no_aug (its evaluation keeps DSA; dsa=False would
    # leave dc_aug_param unset, which its evaluation reads)
    return types.SimpleNamespace(**{**common_args, "no_aug": a.no_dsa}, eval_it=a.iterations,
                                 dsa="True",
                                 **(ast if a.method == "ast" else {}))
  return types.SimpleNamespace(
      **common_args, dsa=True, device=[0], project="parity", name=f"parity_{seed}",
      eval_it=a.iterations + 1, skip_first_eva=True, parall_eva=True,   # no evaluation
      lr_y=a.lr_y, Momentum_y=0.9, threshold=a.threshold, min_start_epoch=0,
      Sequential_Generation=a.current_max_start_epoch > 0,
      current_max_start_epoch=a.current_max_start_epoch,
      expansion_end_epoch=max(a.expansion_end, 1), ema_decay=0.999,
      loss_ratio=a.loss_mask, depth_ratio=0.0,
      loss_threshold_low=0.0 if a.loss_mask > 0 else 1.0,   # gates the loss mask
      record_loss=False, init_frozen="start", Initialize_Label_With_Another_Model=False,
      Initialize_Label_Model="", Initialize_Label_Model_Dir="", Label_Model_Timestamp=-1)


def _stub_wandb(log: list, lrs: list):
  wandb = types.ModuleType("wandb")
  wandb.run = types.SimpleNamespace(name="parity")
  wandb.config = types.SimpleNamespace(_items={})

  def init(config=None, **_):
    wandb.config._items = dict(vars(config))

  def record(values, step=None):
    if "Grand_Loss" in values:   # logged once per outer step, without a step number
      log.append([len(log), float(values["Grand_Loss"]), time.perf_counter()])
    if "Synthetic_LR" in values:
      lrs.append(float(values["Synthetic_LR"]))

  wandb.init, wandb.log, wandb.finish = init, record, lambda *_, **__: None
  wandb.Histogram = wandb.Image = lambda *_, **__: None
  sys.modules["wandb"] = wandb


def _stub_modules(losses: list, lrs: list) -> None:
  """wandb records the loss and lr; torchvision.utils and yacs stand in (unused)."""
  _stub_wandb(losses, lrs)
  torchvision = sys.modules["torchvision"]
  if not hasattr(torchvision, "utils"):
    torchvision.utils = types.SimpleNamespace(make_grid=lambda x, **_: x)
  sys.modules.setdefault("torchvision.utils", torchvision.utils)
  try:
    import yacs.config  # noqa: F401
  except ImportError:   # PAD's utils/cfg.py builds its defaults on a CfgNode
    yacs, config = types.ModuleType("yacs"), types.ModuleType("yacs.config")
    config.CfgNode = type("CfgNode", (types.SimpleNamespace,), {})
    yacs.config = config
    sys.modules.update({"yacs": yacs, "yacs.config": config})


def _load_script(a):
  """The official distillation module: MTT's or AST's distill.py, PAD's distill/PAD.py."""
  import importlib.util
  sys.path.insert(0, a.official)
  if a.method == "ast":   # its distill.py imports a generator.py the repository lacks
    generator = types.ModuleType("generator")
    generator.Generator = None   # for pix_init "gan" only
    sys.modules.setdefault("generator", generator)
  if a.method in ("mtt", "ast"):
    import distill
    return distill
  spec = importlib.util.spec_from_file_location(
      "pad_distill", os.path.join(a.official, "distill", "PAD.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def official_main(a, seed: int) -> None:
  """In the subprocess: the official script's main on our data and initial images."""
  import random
  import torch
  from dd_jax import interop
  from dd_jax.distill import state as state_lib
  config, p = prepared_data(a)
  buffers = export_buffers(a)
  work = os.path.join(a.root, f"official_{seed}")
  images, labels = state_lib.initial_images(p.x_train, p.y_train, p.num_classes, a.ipc,
                                            "real", seed)
  eval_parity.import_official(a.official)   # its utils, kornia/torchvision stood in for
  losses, lrs = [], []
  _stub_modules(losses, lrs)
  script = _load_script(a)
  train = torch.utils.data.TensorDataset(torch.as_tensor(images.transpose(0, 3, 1, 2).copy()),
                                         torch.as_tensor(labels.astype(np.int64)))
  test = torch.utils.data.TensorDataset(torch.as_tensor(p.x_test.transpose(0, 3, 1, 2).copy()),
                                        torch.as_tensor(p.y_test.astype(np.int64)))
  mean, std = p.pre.describe().get("mean"), p.pre.describe().get("std")

  def get_dataset(*_, **__):
    loader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False)
    identity = {c: c for c in range(p.num_classes)}
    return (1, (28, 28), p.num_classes, [str(c) for c in range(p.num_classes)], mean, std,
            train, test, loader, None, identity, identity)

  script.get_dataset = get_dataset
  official_network = script.get_network

  def get_network(*args, **kwargs):
    """The official net; DSA's one-channel batches come with strides today's torch reads
    as channels-last, which its .view() refuses: standard strides, same values (as
    benchmarks/eval_parity.py does)."""
    net = official_network(*args, **kwargs)
    net.register_forward_pre_hook(
        lambda _, inputs: (inputs[0].clone(memory_format=torch.contiguous_format),
                           *inputs[1:]))
    return net

  script.get_network = get_network
  # CPU: image-saving branches call .cuda(). The images, the lr (and PAD's soft labels)
  # are the parameters of the first SGDs the script creates (in an order of its own),
  # updated in place: kept to read them at the end, told apart by rank.
  torch.Tensor.cuda = lambda self, *_, **__: self
  optimised = []
  sgd = torch.optim.SGD

  class RecordingSGD(sgd):
    def __init__(self, params, *args, **kwargs):
      params = list(params)
      optimised.append(params)
      super().__init__(params, *args, **kwargs)

  torch.optim.SGD = RecordingSGD
  if hasattr(script, "manual_seed"):   # PAD seeds itself with 42: with the seed instead
    fixed = script.manual_seed
    script.manual_seed = lambda seed=0, _ours=seed: fixed(_ours)
  torch.manual_seed(seed)
  np.random.seed(seed)
  random.seed(seed)
  os.chdir(work)
  start = time.perf_counter()
  with contextlib.redirect_stdout(sys.stderr):
    script.main(official_args(a, seed, buffers))
  seconds = time.perf_counter() - start
  by_rank = {}
  for params in optimised[:3]:
    by_rank.setdefault(params[0].dim(), params[0].detach())
  final_images, final_lr = by_rank[4], by_rank[0]
  final_labels = by_rank[2] if a.method == "pad" else torch.as_tensor(labels.astype(np.int64))
  out = os.path.join(work, "official")
  os.makedirs(out, exist_ok=True)
  torch.save(final_images.clone(), os.path.join(out, "images_best.pt"))
  torch.save(final_labels.clone(), os.path.join(out, "labels_best.pt"))
  torch.save(final_lr.clone(), os.path.join(out, "lr_best.pt"))
  interop.import_synset(out, config, os.path.join(work, "synset.npz"))
  gaps = np.diff([t for _, _, t in losses])
  with open(os.path.join(work, "run.json"), "w") as f:
    json.dump({"loss": [[s, v] for s, v, _ in losses], "distill_s": seconds,
               "step_s": float(np.median(gaps)) if len(gaps) else float("nan")}, f)


def eval_flags(a) -> list[str]:
  """eval_parity's protocol flags for this study (its --out, --sets and --arms apart)."""
  return [f"--official={a.official_eval or a.official}", f"--nets={a.nets}",
          f"--epochs={a.eval_epochs}", f"--batch={a.batch_train}"]


def evaluate(a, sets: list[str]) -> dict:
  """eval_parity's "official" and "ours" arms on every set (resumable)."""
  out = os.path.join(a.root, "eval")
  common.run_module(["benchmarks.eval_parity", *eval_flags(a), f"--out={out}",
                     f"--sets={','.join(sets)}", "--arms=official,ours"],
                    os.path.join(a.root, "eval.log"))
  with open(os.path.join(out, "results.json")) as f:
    stored = json.load(f)
  suffix = f"/nets={a.nets}/epochs={a.eval_epochs}" + (
      f"/batch={a.batch_train}" if a.batch_train != 256 else "")
  return {s: {k[:-len(suffix)]: v for k, v in r.items() if k.endswith(suffix)}
          for s, r in stored.items()}


def loss_png(curves: dict, path: str, window: int = 10) -> None:
  """Each side's matching loss per outer step: every seed's points faint, their mean
  over seeds smoothed over `window` steps drawn through them."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 3.2))
  for side, color in (("ours", "C0"), ("official", "C1")):
    runs = [dict(points) for (s, _), points in sorted(curves.items()) if s == side and points]
    if not runs:
      continue
    for run in runs:
      ax.plot(list(run), list(run.values()), ".", color=color, alpha=0.15, markersize=2)
    steps = sorted(set.intersection(*(set(r) for r in runs)))
    if not steps:
      continue
    mean = np.array([np.mean([r[t] for r in runs]) for t in steps])
    span = min(window, len(steps))   # a short run is smoothed over all its steps
    smooth = np.convolve(mean, np.ones(span) / span, mode="valid")
    ax.plot(steps[span - 1:], smooth, "-", color=color,
            label=f"{side} ({len(runs)} seeds, mean of {span} steps)")
  ax.set_xlabel("outer step")
  ax.set_ylabel("matching loss")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def verdict(means: dict, seeds: list[int]) -> list[str]:
  """The issue's pass criteria, each with its figures: per protocol, our sets' mean
  within 1 point or the pooled seed std of the official sets'; per set, the two
  protocols within 1 point."""
  out = []
  for arm in ("ours", "official"):
    ours, theirs = means["ours", arm], means["official", arm]
    gap = np.mean(ours) - np.mean(theirs)
    bound = max(1.0, float(np.sqrt((np.var(ours) + np.var(theirs)) / 2)))
    out.append(f"- {arm} protocol: ours - official {gap:+.2f} (bound {bound:.2f}): "
               + ("pass" if abs(gap) <= bound else "MISS"))
  for side in ("ours", "official"):
    gaps = [o - f for o, f in zip(means[side, "ours"], means[side, "official"])]
    worst = max(gaps, key=abs)
    out.append(f"- {side} sets, our protocol - official protocol per seed: "
               + ", ".join(f"{g:+.2f}" for g in gaps)
               + (": pass" if abs(worst) <= 1.0 else ": MISS"))
  return out


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--method", default="mtt", choices=("mtt", "pad", "ast"))
  p.add_argument("--official", default="",
                 help="a checkout of mtt-distillation (--method=mtt), PAD (pad) or "
                      "AST-Alignment-with-Smooth-Expert (ast)")
  p.add_argument("--official-eval", default="",
                 help="the checkout whose evaluate_synset scores the sets (default "
                      "--official; soft labels need PAD's)")
  p.add_argument("--experts", default="",
                 help="experts to share (default <root>/experts, trained by the first run)")
  p.add_argument("--root", default="", help="the study's folder (resumable)")
  p.add_argument("--ipc", type=int, default=1)
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--train-per-class", type=int, default=1000)
  p.add_argument("--num-experts", type=int, default=2)
  p.add_argument("--experts-epochs", type=int, default=5, help="epochs per expert")
  p.add_argument("--syn-steps", type=int, default=10)
  p.add_argument("--expert-epochs", type=int, default=2, help="M")
  p.add_argument("--max-start-epoch", type=int, default=2)
  p.add_argument("--iterations", type=int, default=200)
  p.add_argument("--lr-img", type=float, default=1000.0)
  p.add_argument("--lr-lr", type=float, default=1e-7)
  p.add_argument("--lr-teacher", type=float, default=0.01)
  p.add_argument("--batch-syn", type=int, default=0, help="0: the whole set")
  p.add_argument("--expert-order", default="draw", choices=("draw", "cycle"),
                 help="our side's distill.expert_order (the official side cycles)")
  p.add_argument("--no-dsa", action="store_true",
                 help="no augmentation in the distillation on either side (mtt): with one "
                      "expert and one start epoch both runs are deterministic, step for "
                      "step comparable")
  p.add_argument("--lr-y", type=float, default=2.0, help="pad: the soft labels' lr")
  p.add_argument("--threshold", type=float, default=1.0,
                 help="pad: updates skipped above this matching loss")
  p.add_argument("--current-max-start-epoch", type=int, default=0,
                 help="pad: the start window's first upper bound (0: no sequential window)")
  p.add_argument("--expansion-end", type=int, default=0,
                 help="pad: steps until the window reaches --max-start-epoch")
  p.add_argument("--loss-mask", type=float, default=0.0,
                 help="pad: share of parameters with the smallest matching loss left out")
  p.add_argument("--batch-train", type=int, default=256,
                 help="the evaluation's training batch (PAD's YAMLs: 128)")
  p.add_argument("--nets", type=int, default=5)
  p.add_argument("--eval-epochs", type=int, default=300)
  p.add_argument("--from-results", default="",
                 help="print the table of a study's results.json (e.g. one committed "
                      "under benchmarks/results/) and stop; several, comma-separated, are "
                      "pooled: studies that differ only in seeds, nets and folders")
  p.add_argument("--png", default="",
                 help="with --from-results: also draw the loss curves to this PNG file")
  p.add_argument("--official-from", default="",
                 help="take the official runs (timing, loss, both protocols' accuracies) "
                      "from this earlier study's results.json, which must have the same "
                      "settings on the official side: only our side runs (e.g. another "
                      "--expert-order)")
  p.add_argument("--distill-only", action="store_true",
                 help="run the distillations of --seeds, write their timings to "
                      "<root>/distill.json and stop (their evaluation can run elsewhere: "
                      "eval_parity's results merged into <root>/eval/results.json are "
                      "picked up by a later run without this flag)")
  p.add_argument("--run-official", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
  return p


def main() -> None:
  p = parser()
  a = p.parse_args()
  if a.run_official:
    official_main(a, a.seed)
    return
  if a.from_results:
    records = []
    for path in a.from_results.split(","):
      with open(path) as f:
        records.append(json.load(f))
    record = pooled(records, a.from_results)
    print(table(record))
    if a.png:
      loss_png({tuple(k.rsplit("_", 1)): r.get("loss", []) for k, r in record["runs"].items()},
               a.png)
    return
  if not (a.official and a.root):
    p.error("--official and --root are needed to run a study (or --from-results)")
  os.makedirs(a.root, exist_ok=True)
  print(common.machine(), flush=True)
  seeds = [int(s) for s in a.seeds.split(",")]
  earlier = earlier_official_runs(a, seeds) if a.official_from else {}
  runs = {}
  for seed in seeds:
    runs[("ours", seed)] = run_ours(a, seed)        # the first trains the experts
    runs[("official", seed)] = earlier.get(seed) or run_official(a, seed)
    for side in ("ours", "official"):
      r = runs[(side, seed)]
      print(f"seed {seed} {side}: {r['seconds']:.0f} s, {r['step_s']:.2f} s / outer step, "
            f"peak {r['peak_mib']:.0f} MiB", flush=True)
  if a.distill_only:   # the timings alone, e.g. a quiet machine's (<root>/distill.json)
    with open(os.path.join(a.root, "distill.json"), "w") as f:
      json.dump({"args": {k: v for k, v in vars(a).items() if k not in ("run_official", "seed")},
                 "machine": common.machine(), "seeds": seeds,
                 "runs": {f"{side}_{s}": {k: v for k, v in runs[side, s].items() if k != "eval"}
                          for s in seeds for side in ("ours", "official")}}, f)
    return
  sets = {(side, s): os.path.join(a.root, f"{side}_{s}", "synset.npz")
          for s in seeds for side in ("ours", "official") if not runs[side, s].get("eval")}
  results = evaluate(a, list(sets.values()))
  loss_png({k: r.get("loss", []) for k, r in runs.items()}, os.path.join(a.root, "losses.png"))
  record = {"args": {k: v for k, v in vars(a).items() if k not in ("run_official", "seed")},
            "machine": common.machine(), "seeds": seeds,
            "runs": {f"{side}_{s}": {**runs[side, s], "eval": runs[side, s].get("eval")
                                     or results[sets[side, s]]}
                     for s in seeds for side in ("ours", "official")}}
  with open(os.path.join(a.root, "results.json"), "w") as f:
    json.dump(record, f)
  text = table(record)
  print(text)
  with open(os.path.join(a.root, "table.md"), "w") as f:
    f.write(text + "\n")


# Our side's settings only: an earlier study that differs in nothing else has the same
# official runs.
OURS_ONLY = {"root", "experts", "expert_order", "from_results", "official_from", "official",
             "official_eval", "distill_only"}


def earlier_official_runs(a, seeds: list[int]) -> dict[int, dict]:
  """The official runs of --official-from's study, per seed; refused when its settings
  differ on the official side."""
  with open(a.official_from) as f:
    record = json.load(f)
  ours = {k: v for k, v in vars(a).items() if k not in OURS_ONLY | {"run_official", "seed"}}
  theirs = {k: v for k, v in record["args"].items() if k in ours}
  differ = sorted(k for k in ours if theirs.get(k) != ours[k])
  if differ:
    sys.exit(f"--official-from: {a.official_from} differs in "
             + ", ".join(f"{k} ({theirs.get(k)!r} there, {ours[k]!r} here)" for k in differ))
  missing = [s for s in seeds if f"official_{s}" not in record["runs"]]
  if missing:
    sys.exit(f"--official-from: {a.official_from} has no official run of seeds {missing}")
  return {s: record["runs"][f"official_{s}"] for s in seeds}


# Settings that may differ between studies pooled by --from-results.
POOLABLE = OURS_ONLY - {"expert_order"} | {"seeds", "nets", "png"}


def pooled(records: list[dict], name: str = "") -> dict:
  """One record of several studies' runs (their seeds disjoint, their settings the same
  apart from POOLABLE); `nets` becomes each study's count, e.g. "5+10"."""
  first = records[0]
  for other in records[1:]:
    differ = sorted(k for k in first["args"]
                    if k not in POOLABLE and other["args"].get(k) != first["args"][k])
    if differ:
      sys.exit(f"--from-results {name}: the studies differ in "
               + ", ".join(f"{k} ({first['args'][k]!r}, {other['args'].get(k)!r})"
                           for k in differ) + "; pool only studies that differ in seeds")
  seeds = [s for r in records for s in r["seeds"]]
  if len(set(seeds)) < len(seeds):
    sys.exit(f"--from-results {name}: a seed appears in two studies ({seeds}); pool "
             "studies of different seeds")
  if len(records) == 1:
    return first
  nets = "+".join(str(r["args"]["nets"]) for r in records)
  return {"args": {**first["args"], "nets": nets, "seeds": ",".join(map(str, seeds))},
          "machine": "; ".join(dict.fromkeys(r["machine"] for r in records)),
          "seeds": seeds, "runs": {k: v for r in records for k, v in r["runs"].items()}}


def table(record: dict) -> str:
  """The README's table and verdict from a results.json (this script's record of a study:
  its arguments, each run's timing and loss curve, each set's per-net accuracies)."""
  a, seeds, runs = types.SimpleNamespace(**record["args"]), record["seeds"], record["runs"]
  if not all(r.get("eval") for r in runs.values()):
    return timing_table(record)
  lines = [f"{a.method.upper()} parity, Fashion-MNIST IPC {a.ipc}, {len(seeds)} seeds, "
           f"{a.iterations} steps (N {a.syn_steps}, M {a.expert_epochs}, T+ "
           f"{a.max_start_epoch}" + (f", batch_syn {a.batch_syn}" if a.batch_syn else "")
           + (f", our expert order {a.expert_order}" if a.expert_order != "draw" else "")
           + f"), evaluated with {a.nets} nets x {a.eval_epochs} epochs "
           "(benchmarks/official_parity.py; mean ± std over seeds of each seed's mean, %)", "",
           "| side | our protocol | official protocol | s / outer step | peak RSS MiB |",
           "| --- | --- | --- | --- | --- |"]
  means = {(side, arm): [100 * np.mean(runs[f"{side}_{s}"]["eval"][arm]) for s in seeds]
           for side in ("ours", "official") for arm in ("ours", "official")}
  for side in ("ours", "official"):
    row = [f"{np.mean(means[side, arm]):.2f} ± {np.std(means[side, arm]):.2f}"
           for arm in ("ours", "official")]
    per_step = np.mean([runs[f"{side}_{s}"]["step_s"] for s in seeds])
    peak = max(runs[f"{side}_{s}"]["peak_mib"] for s in seeds)
    lines.append(f"| {side} | {row[0]} | {row[1]} | {per_step:.2f} | {peak:.0f} |")
  return "\n".join(lines + [""] + verdict(means, seeds) + net_pooled(runs, seeds))


def net_pooled(runs: dict, seeds: list) -> list[str]:
  """Per protocol, ours - official over every net of a side, with its standard error
  (the seeds' spread and the nets' alike; a context for the verdict, not a criterion)."""
  out = []
  for arm in ("ours", "official"):
    acc = {side: 100 * np.concatenate([runs[f"{side}_{s}"]["eval"][arm] for s in seeds])
           for side in ("ours", "official")}
    se = np.sqrt(sum(np.var(a, ddof=1) / len(a) for a in acc.values()))
    out.append(f"- {arm} protocol, pooled over the {len(acc['ours'])} nets a side: ours - "
               f"official {np.mean(acc['ours']) - np.mean(acc['official']):+.2f} ± {se:.2f} "
               "(standard error)")
  return out



def timing_table(record: dict) -> str:
  """A --distill-only record's table: each side's seconds per outer step and peak RSS."""
  a, seeds, runs = types.SimpleNamespace(**record["args"]), record["seeds"], record["runs"]
  lines = [f"{a.method.upper()} outer steps, Fashion-MNIST IPC {a.ipc}, {a.iterations} steps "
           f"(N {a.syn_steps}, M {a.expert_epochs}"
           + (f", batch_syn {a.batch_syn}" if a.batch_syn else "") + f"), seeds {a.seeds}; "
           f"{record['machine']}", "",
           "| side | s / outer step (median gap) | whole run s | peak RSS MiB |",
           "| --- | --- | --- | --- |"]
  for side in ("ours", "official"):
    rs = [runs[f"{side}_{s}"] for s in seeds]
    lines.append(f"| {side} | {np.mean([r['step_s'] for r in rs]):.2f} | "
                 f"{np.mean([r['seconds'] for r in rs]):.0f} | "
                 f"{max(r['peak_mib'] for r in rs):.0f} |")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
