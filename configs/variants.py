"""The method variants an experiment file applies after the defaults (common.make): each
is a function of (config, args) that reads its own switches and sets fields, and none
calls another. Files compose them in order, e.g. AST with PAD's modules on top:

    common.make(arg, PER_IPC, dataset, variants.when("pad", variants.pad(20)), variants.ast)
"""
from __future__ import annotations

import functools
import itertools

import ml_collections

from configs.common import Variant, code_variant, set_fields, switch

# Variant `hour`: Fashion-MNIST MTT at IPC 1 within the hour on a 2-core CPU (the
# README's run command; 39 minutes measured, benchmarks/results/readme_command.json):
# 3 experts x 3 epochs, 500 outer steps with N=20, evaluated at the start and the end.
HOUR_RECIPE = {"expert.num_experts": 3, "expert.epochs": 3, "distill.syn_steps": 20,
               "distill.iterations": 500, "distill.eval_every": 500}


def hour(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
  """Variant `hour` (HOUR_RECIPE): a run sized for a CPU."""
  if switch(args, "hour", default=False):
    set_fields(config, HOUR_RECIPE)


def when(name: str, variant: Variant) -> Variant:
  """`variant` applied only when the switch `name` is on (`pad=1`); off by default."""

  def apply(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
    if switch(args, name, default=False):
      variant(config, args)

  return apply


def pad(addition_end: int, code: dict[int, dict] | None = None) -> Variant:
  """PAD = DATM's backbone + FIEX (easy-to-hard expert data, GSAM experts as the official
  command) + FIEM (depth parameter mask). Variants `fiex=0` / `fiem=0` turn a module
  off; both off is DATM; `fiem=deep` masks the deepest share instead (`mask=<ratio>`,
  default 0.25: Table 5b's ablation); `score=uncertainty|loss` ranks by another
  difficulty score (Table 4a); `code=1` the official YAML's values (`code`: IPC ->
  fields) and its README's second removal stage. Expert settings: 100 experts x 100 epochs,
  GSAM rho 0.01 alpha 0.3 (README command), IR 0.75 and AEE `addition_end` (Table 10),
  one removal of the easiest 10% (pad.txt lines 100, 458) after epoch 40 (the README's
  first; the paper gives no epoch)."""
  return functools.partial(apply_pad, addition_end=addition_end, code=code)


def apply_pad(config: ml_collections.ConfigDict, args: dict[str, str], addition_end: int,
              code: dict[int, dict] | None = None) -> None:
  """PAD's switches on `config` (see `pad`); the AST and SeqMatch files apply them with
  `when("pad", pad(...))`."""
  runlocal = bool(args.get("runlocal"))
  e = config.expert
  e.sam = "gsam"
  if not runlocal:
    e.epochs = 100
  official = not runlocal and code_variant(config, args, code, config.distill.ipc)
  if switch(args, "fiex"):
    e.data_schedule = "pad"
    e.schedule.initial_ratio = 0.75
    e.schedule.addition_end = addition_end
    e.schedule.removal_epochs = (40, 60) if official else (40,)
    e.schedule.removal_fractions = (0.1, 0.2) if official else (0.1,)
  d = config.distill
  d.soft_labels = True
  if not runlocal:
    d.iterations = 10_000
  else:   # the small variant exercises every module (the IPC tables are not applied)
    d.pix_init, d.param_mask_ratio = "correct", 0.5
  if not switch(args, "fiem"):
    d.param_mask, d.param_mask_ratio = "none", 0.0
  elif args.get("fiem", "").lower() == "deep":   # Table 5b: the deepest share masked
    d.param_mask, d.param_mask_ratio = "deep", float(args.get("mask", 0.25))
  elif d.param_mask == "none" and d.param_mask_ratio > 0:
    d.param_mask = "depth"
  if "score" in args:   # Table 4a's other difficulty scores (uncertainty, loss)
    config.score.method = args["score"]
  config.eval.batch_size = 128   # the official batch_train


def matching(method: str, iterations: int, lr_img: float, schedule_steps: int
             ) -> Variant:
  """DC / DM (the official DC/DSA/DM settings: SGD momentum 0.5 on the images, nets at
  lr 0.01, 256 real images per class and match, DSA on, real init), with PAD's modules
  as the paper applies them to DC/DM (pad.txt Appendix A.1; configs/papers.py PAD_DC /
  PAD_DM): `fiex=1` removes a fixed share of each class from the real batches, the
  hardest at IPC 1 and 10, the easiest at IPC 500 (Table 6's best ratio); `fiem=1` masks
  the shallowest parameters (Table 7's best ratio: 0.25 at IPC 10, 0.75 at IPC 500).
  (PAD's expert curriculum on the real batches, one scheduler epoch per `schedule_steps`
  steps, stays available as expert.data_schedule="pad".)"""

  def apply(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
    d = config.distill
    d.method, d.lr_img, d.img_momentum = method, lr_img, 0.5
    d.lr_teacher, d.batch_real, d.schedule_steps = 0.01, 256, schedule_steps
    if args.get("runlocal"):
      d.batch_real = 16
    else:
      d.iterations = iterations
      d.eval_every = iterations // 5
    fiex, fiem = switch(args, "fiex", default=False), switch(args, "fiem", default=False)
    if fiex or fiem:
      from configs import papers   # the tables import the configs: only when used
      row = papers.PAD_MATCHING[method].rows.get(("cifar10", d.ipc), {})
    if fiex:
      if not row:
        raise ValueError(
            f"fiex=1: PAD's Table 6 gives no {method.upper()} removal for ipc={d.ipc} "
            "(only 1, 10, 500); set --config.expert.data_schedule=prune "
            "--config.expert.schedule.prune=hard|easy "
            "--config.expert.schedule.prune_fraction=<f> instead")
      e = config.expert
      e.data_schedule, e.schedule.prune = "prune", row["prune"]
      e.schedule.prune_fraction = row["prune_fraction"]
    if fiem:
      if row.get("param_mask_ratio") is None:
        raise ValueError(
            f"fiem=1: PAD's Table 7 gives no {method.upper()} mask ratio for ipc={d.ipc} "
            "(only 10, 500); set --config.distill.param_mask=depth "
            "--config.distill.param_mask_ratio=<f> instead")
      d.param_mask, d.param_mask_ratio = "depth", row["param_mask_ratio"]

  return apply


def idc(lr_base: float, size_base: int, distance: str, net_images: int,
        factor: int = 2, iterations: int = 2_000
        ) -> Variant:
  """IDC (Kim et al.) with the official reproduce settings: multi-formation `factor`,
  lr_img = lr_base x ipc/10 x (size/size_base)^2, SGD momentum 0.5 on the images, 100
  matches per outer step, 64 real images per class and match, the net trained on
  `net_images` real images (batches of 64) after each match; evaluation by IDC's protocol
  (eval.protocol "idc": batch 64 at lr 0.01, lr x0.2 at 2/3 and 5/6, CutMix, its DSA
  without cutout, and without flip for MNIST). Variants: `factor=<f>` (1: no multi-formation),
  `seq=1` (SeqMatch-IDC: the IPC in two subsets distilled one after another, the outer
  steps split between them), `seq=1,warm=1` (as the official seqmatch-idc code: subset
  2's matching nets start from a net trained on subset 1, a new one every 50 outer
  steps: seqmatch.experts="warm_start", idc.fix_iter=50)."""

  def apply(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
    d, i = config.distill, config.idc
    i.factor = int(args.get("factor", factor))
    i.distance = distance
    size = {"fashion_mnist": 28, "mnist": 28}.get(config.data.name, 32)
    d.method, d.img_momentum, d.lr_teacher, d.batch_real = "idc", 0.5, 0.01, 64
    d.lr_img = lr_base * d.ipc / 10 * (size / size_base) ** 2
    i.net_steps = -(-net_images // d.batch_real)
    config.eval.batch_size, config.eval.protocol = 64, "idc"
    config.eval.dsa_strategy = ("color_crop_scale_rotate" if config.data.name == "mnist"
                                else "color_crop_flip_scale_rotate")
    if args.get("runlocal"):
      d.batch_real, i.matches, i.net_steps, i.max_syn = 8, 2, 1, 8
    else:
      d.iterations, d.eval_every = iterations, iterations // 5
    if switch(args, "seq", default=False):
      config.seqmatch.experts = "shared"   # fresh matching nets unless warm=1
      if args.get("runlocal"):   # two subsets of one stored image per class
        d.ipc = config.eval.ipc = 2
        d.lr_img = lr_base * d.ipc / 10 * (size / size_base) ** 2
      if d.ipc < 2:
        raise ValueError(f"seq=1 splits the IPC into two subsets; ipc={d.ipc} cannot be")
      first = d.ipc - d.ipc // 2
      config.seqmatch.subsets = (first, d.ipc - first)
      config.seqmatch.iterations = (d.iterations - d.iterations // 2, d.iterations // 2)
    if switch(args, "warm", default=False):
      if not config.seqmatch.subsets:
        raise ValueError("warm=1 warm-starts SeqMatch-IDC's matching nets: add seq=1")
      # The official seqmatch-idc script: every 50 outer steps a net trained (the
      # evaluation recipe, 1000 epochs) on the earlier subsets starts the matching net.
      config.seqmatch.experts, i.fix_iter = "warm_start", 50
      if args.get("runlocal"):
        config.seqmatch.warm_start_epochs = 2

  return apply


def ast(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
  """AST (Shen et al.): smooth experts (SGD momentum 0.9, the CE scaled 0.5 -> 1 over 5
  epochs, gradient penalty mu 1, K 1, per-image norm), representative (K-Means) init,
  the balanced inner loss (vartheta 8, natural log), intermediate matching (equal
  weights) and weight perturbation (rho 0.1, filter-normalised): the paper's values.

  Smooth experts: lr 0.003 and weight decay 1e-3 (buffer.py's: the paper gives none),
  halved after epoch 25 (ast.txt line 350); 50 experts (line 320); the matching
  distances normalised by the perturbed start (Eq. 22-23); evaluation with the lr
  halved at epoch 500 (eval.protocol "ast").

  Variants: `smooth=0`, `init=0`, `balance=0`, `inter=0`, `perturb=0` turn one piece off
  (all off = MTT on AST's 50 experts and evaluation); `code=1` takes the official code's
  values instead (clip over 10 epochs, mu 2 with the per-pixel channel norm, the expert
  lr x0.6 after epoch 27 with a new SGD, 100 experts, log base 5, logits for K-Means,
  whole-tensor perturbation with rho 1, inner momentum 0.9, its evaluation schedule).
  `pad=1`: the AST files list `when("pad", pad(...))` before this variant (PAD's GSAM and
  scheduled experts, soft labels), which keeps PAD's expert length; here it sets the depth
  mask `mask=<ratio>` (default 0.25) unless `fiem=0`.
  """
  runlocal, code = bool(args.get("runlocal")), switch(args, "code", default=False)
  with_pad = switch(args, "pad", default=False)
  e, d = config.expert, config.distill
  if with_pad:
    if switch(args, "fiem") and not runlocal:
      d.param_mask, d.param_mask_ratio = "depth", float(args.get("mask", 0.25))
  elif not runlocal:
    e.epochs = 50
    e.num_experts = 100 if code else 50   # "50 distinct expert trajectories" (line 320)
  if switch(args, "smooth"):
    e.momentum = 0.9
    e.clip_epochs, e.clip_start = (10 if code else 5), 0.5
    e.gp_weight, e.gp_target = (2.0 if code else 1.0), 1.0
    e.gp_norm = "channel" if code else "sample"
    # lr and weight decay: the paper gives none, the official buffer.py's
    e.lr, e.weight_decay = 0.003, 1e-3
    # "the learning rate reduced by half in the 25th epoch" (ast.txt line 350); the
    # code: x0.6 after epoch 27 with a new SGD
    e.lr_schedule = "step"
    e.lr_step_after, e.lr_step_factor, e.lr_step_reset = (
        ((27,), 0.6, True) if code else ((25,), 0.5, False))
    if runlocal:   # 2-epoch experts
      e.lr_step_after = (1,)
  if switch(args, "init"):
    d.pix_init = "kmeans"
    d.kmeans_features = "logits" if code else "penultimate"
  if switch(args, "balance"):
    d.balance_loss, d.balance_offset = True, 8.0
    d.balance_log_base = 5.0 if code else 2.718281828459045
  if switch(args, "inter"):
    d.intermediate = "equal"
    if runlocal:   # one intermediate expert epoch to match
      d.expert_epochs = 2
  if switch(args, "perturb"):
    d.perturb_rho, d.perturb_style = (1.0, "tensor") if code else (0.1, "filter")
  if code:
    d.inner_momentum = 0.9
  # the paper's evaluation: lr x0.5 at epoch 500 of 1000; the code's: x0.5 after epoch
  # 501 of 1001 with a new SGD, weight decay 1e-3
  config.eval.protocol = "ast_code" if code else "ast"
  if code:
    config.eval.weight_decay = 1e-3


# GLaD's learning rates (w, f) per objective, from its scripts.
GLAD_LRS = {"mtt": (10.0, 10_000.0), "dc": (1e-3, 1.0), "dm": (1e-2, 10.0)}


def hpd(layer: int, steps: dict[str, int] | None = None
        ) -> Variant:
  """H-PD (and GLaD) on the GAN prior: distill.parameterization="hpd" with GLaD's
  learning rates for the objective. Variants: `glad=1` (GLaD: one layer, `layer`, no
  progression), `method=dc|dm` (the objective), `prior=random` (GLaD's random prior),
  `code=1` (the released H-PD code: one layer per space, no search within a space, the
  last space's set). `steps`: H-PD's steps per space by objective (paper: MTT/DC 100,
  DM 20). H-PD as the paper: two generator layers per space (Tables 12-14), each
  space's best latents by the class-relevant distance carried on (Sec. 3.3), the final
  set by accuracy on 50 held-out training images per class (line 47)."""
  steps = steps or {"mtt": 100, "dc": 100, "dm": 20}

  def method(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
    d = config.distill
    d.method = args.get("method", "mtt")
    if d.method not in GLAD_LRS:
      raise ValueError(f"method={d.method}: use mtt, dc or dm")
    config.glad.lr_w, config.glad.lr_f = GLAD_LRS[d.method]
    config.glad.layer = layer
    # One image per class: the class-average w (GLaD's --avg_w, H-PD's averaged
    # initialisation); with more, identical starts would stay alike (GLaD's README).
    config.glad.init = "average" if d.ipc == 1 else "sample"
    if args.get("prior"):
      config.gan.prior = args["prior"]
    if switch(args, "glad", default=False):
      d.parameterization = "glad"
    else:
      d.parameterization = "hpd"
      h = config.hpd
      h.steps_per_layer = 2 if args.get("runlocal") else steps[d.method]
      if switch(args, "code", default=False):
        h.layers_per_space, h.record_every, h.select = 1, 0, "last"
      else:
        h.layers_per_space, h.select = 2, "accuracy"
        config.data.holdout_per_class = 50
    if args.get("runlocal"):
      g = config.gan
      g.resolution, g.num_layers, g.channel_base, g.channel_max = 16, 3, 64, 8
      g.w_dim, g.z_dim, g.train_steps, g.batch_size = 16, 8, 4, 8
      config.glad.layer, config.glad.average_samples = min(layer, 2), 16
      config.hpd.real_per_class = 5
      # three layers: one per space; a 1-epoch distance net, 1 net x 2 epochs to select
      config.hpd.layers_per_space, config.hpd.record_every = 1, 1
      config.hpd.distance_epochs, config.hpd.select_nets, config.hpd.select_epochs = 1, 1, 2
      if config.data.holdout_per_class:
        config.data.holdout_per_class = 2

  return method


def seqmatch(table: dict[int, dict], code: dict[int, dict] | None = None
             ) -> Variant:
  """SeqMatch (Du et al.): the IPC split into subsets distilled one after another; `table`
  maps IPC -> seqmatch fields (subsets and per-subset values, Table 4's max start
  epochs on each subset's warm-started experts). Variants: `seq=0` (one set: plain MTT
  on the same settings), `warm=0` (ours: shared experts, the table's windows laid end to
  end, S1 on [0, e1), S2 on [e1, e1 + e2), ..., experts trained long enough), `code=1` (the official scripts' values
  where they differ from the table: `code` maps IPC -> fields). The SeqMatch files list
  `when("pad", pad(20))` and `when("ast", ast)` before this variant: `pad=1` / `ast=1`
  put PAD's or AST's switches on every subset."""

  def method(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
    runlocal = bool(args.get("runlocal"))
    if not switch(args, "seq"):
      return
    s, d = config.seqmatch, config.distill
    if runlocal:   # two subsets of one image per class
      d.ipc, config.eval.ipc = 2, 2
      s.subsets = (1, 1)
    else:
      for key, value in table[d.ipc].items():
        s[key] = value
      code_variant(config, args, code, d.ipc)
    if switch(args, "warm"):
      s.experts = "warm_start"
      if runlocal:
        s.warm_start_epochs = 2
    elif not runlocal:
      s.experts = "shared"
      ends = list(itertools.accumulate(s.max_start_epochs))
      s.min_start_epochs = tuple([0] + ends[:-1])
      s.max_start_epochs = tuple(ends)
      longest = max(s.expert_epochs or (d.expert_epochs,))
      config.expert.epochs = max(config.expert.epochs, ends[-1] - 1 + longest)
    else:   # runlocal's experts have 2 epochs: start windows [0, 1) and [1, 2)
      s.experts, s.min_start_epochs, s.max_start_epochs = "shared", (0, 1), (1, 2)

  return method
