"""Defaults shared by every experiment config, and the variant-argument parser.

Each experiment file (`configs/<dataset>_<method>.py`) calls `base_config()`, overrides a
few fields, and applies variants parsed from its argument, e.g.
`--config=configs/fashion_mnist_mtt.py:ipc=10,runlocal`.
"""
from __future__ import annotations

import difflib
import functools
import itertools
from typing import Callable

import ml_collections

from dd_jax.data.augment import DEFAULT_STRATEGY


class Variants(dict):
  """The variant arguments of a config file ('ipc=10,runlocal'), remembering which ones
  the file read: `make` refuses one that nothing read (a misspelt or unused variant)."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.read: set[str] = set()

  def get(self, key, default=None):
    self.read.add(key)
    return super().get(key, default)

  def __getitem__(self, key):
    self.read.add(key)
    return super().__getitem__(key)

  def __contains__(self, key):
    self.read.add(key)
    return super().__contains__(key)

  def check_all_read(self) -> None:
    """ValueError naming each variant nothing read, with the closest one read."""
    for key in sorted(set(self) - self.read):
      close = difflib.get_close_matches(key, sorted(self.read), n=1, cutoff=0.6)
      hint = f" (did you mean {close[0]}?)" if close else ""
      raise ValueError(f"variant {key!r} is not one this config file uses with these "
                       f"variants{hint}; it reads: {', '.join(sorted(self.read))}")


def parse_arg(arg: str | None) -> Variants:
  """'ipc=10,runlocal' -> {'ipc': '10', 'runlocal': 'true'}."""
  out = Variants()
  for part in (arg or "").split(","):
    part = part.strip()
    if not part:
      continue
    key, _, value = part.partition("=")
    dict.__setitem__(out, key.strip(), value.strip() if value else "true")
  return out


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0                      # seeds every random draw: subsets, experts, init, steps

  config.data = ml_collections.ConfigDict()
  # name: fashion_mnist | mnist | cifar10 | cifar100 | svhn | tiny_imagenet | imagenette;
  # with source npz or folder, any name (one's own data: configs/custom_mtt.py)
  config.data.name = "fashion_mnist"
  # source: auto | tfds | idx | folder (train/<class>/*, test/<class>/*) | npz (x_train,
  # y_train, x_test, y_test) | cifar (the official CIFAR-10/100 binary archive or folder)
  config.data.source = "auto"
  config.data.data_dir = ""            # the IDX/image folder, .npz, archive or tfds data_dir
  config.data.image_size = 0           # 0 = as stored; else resized (tfds, folder)
  config.data.zca = False              # ZCA whitening (MTT's CIFAR runs)
  config.data.zca_epsilon = 0.1        # ZCA regulariser added to the eigenvalues
  config.data.train_per_class = 0      # 0 = all; >0 keeps that many per class (tiny runs)
  config.data.holdout_per_class = 0    # training images per class held out (hpd.select=accuracy)
  config.data.test_limit = 0           # 0 = whole test set

  config.model = ml_collections.ConfigDict()
  config.model.arch = "ConvNet"        # the net distilled against: a models.ARCHITECTURES name
  config.model.width = 128             # ConvNet channels per layer
  config.model.depth = 3               # ConvNet conv blocks (each conv, norm, activation, 2x2 pool)
  config.model.norm = "instancenorm"   # instancenorm | batchnorm | layernorm | none
  config.model.pooling = "avgpooling"   # avgpooling | maxpooling | none
  config.model.activation = "relu"     # relu | leakyrelu | sigmoid
  config.model.conv_impl = "auto"      # auto | im2col | lax (auto: im2col on CPU)
  # one_channel_padding: ConvNet's first conv on one-channel images: 3 as networks.py
  # (28 px become 32 px maps, 4x4 before the classifier), 1 dd_jax's before 2026-12.
  config.model.one_channel_padding = 3
  config.model.hidden = (128, 128)     # MLP only

  config.expert = ml_collections.ConfigDict()
  config.expert.dir = ""               # "" = <workdir>/experts
  config.expert.num_experts = 100      # trajectories trained on the real data
  config.expert.seed = -1              # seeds the experts (and PAD's ranking); -1 = seed:
                                       # set it to distil with several seeds from one set
  config.expert.epochs = 50            # epochs per trajectory (one snapshot per epoch)
  config.expert.optimizer = "sgd"      # sgd | adam
  config.expert.lr = 0.01              # the experts' learning rate
  config.expert.lr_schedule = "constant"   # constant | step | cosine
  # lr_step_after / lr_step_factor / lr_step_reset: the step schedule multiplies the lr
  # by lr_step_factor after each of these (1-based) epochs (() = half of them), with a
  # fresh optimiser (momentum zero) when lr_step_reset (AST's paper: (25,), 0.5; its
  # code: (27,), 0.6, reset).
  config.expert.lr_step_after = ()
  config.expert.lr_step_factor = 0.1
  config.expert.lr_step_reset = False
  config.expert.momentum = 0.0         # SGD momentum (MTT 0; AST's smooth experts 0.9)
  config.expert.weight_decay = 0.0     # L2 weight decay
  config.expert.batch_size = 256       # real images per expert step
  config.expert.dsa_strategy = DEFAULT_STRATEGY   # "none" turns DSA off
  config.expert.eval_test = True       # test accuracy after every epoch (metadata)
  config.expert.sam = "none"           # none | gsam (DATM/PAD experts: GSAM)
  config.expert.sam_rho = 0.01         # GSAM neighbourhood radius
  config.expert.sam_alpha = 0.3        # GSAM surrogate-gap weight
  config.expert.sam_adaptive = True    # the official code's (always-on) adaptive SAM
  # AST's smooth experts: the CE scaled from clip_start up to 1 over the first
  # clip_epochs epochs (paper 5, code 10; 0 = off) and the gradient penalty
  # gp_weight * E[(|grad_x sum logits| - gp_target)^2] (paper mu 1, code 2; 0 = off),
  # the norm per image ("sample", paper) or over channels per pixel ("channel", code).
  config.expert.clip_epochs = 0
  config.expert.clip_start = 0.5
  config.expert.gp_weight = 0.0
  config.expert.gp_target = 1.0
  config.expert.gp_norm = "sample"     # sample (paper: per image) | channel (code: per pixel)
  # prune: a fixed part of each class removed (PAD on DC/DM, pad.txt Appendix A.1; the
  # official buffer_RM.py for experts)
  config.expert.data_schedule = "none"   # none | pad (PAD FIEX: easy-to-hard) | prune
  config.expert.schedule = ml_collections.ConfigDict()   # experts/schedule.py
  config.expert.schedule.initial_ratio = 0.75   # easiest fraction of each class at epoch 0
  config.expert.schedule.addition_end = 20      # all data from this (0-based) epoch on
  # removal_epochs / removal_fractions: after these epochs, drop the easiest fraction
  # (PAD's paper: once, 10%, pad.txt lines 100 and 458; its README command adds 20%
  # after epoch 60, the PAD configs' code=1).
  config.expert.schedule.removal_epochs = (40,)
  config.expert.schedule.removal_fractions = (0.1,)
  config.expert.schedule.prune = "hard"        # prune: remove the hardest | easiest
  config.expert.schedule.prune_fraction = 0.1   # prune: that fraction of each class
  config.expert.schedule.scores = ""   # score file; "" = <workdir>/scores/<method>.npz,
                                       # computed first when missing

  config.score = ml_collections.ConfigDict()   # PAD's difficulty scores (experts/score.py)
  config.score.method = "el2n"   # el2n | loss | uncertainty | entropy | grand (higher = harder)
  config.score.num_models = 5          # scores averaged over this many models
  config.score.epochs = 10             # each trained this long (early training)
  config.score.lr = 0.01               # the scoring models' SGD lr
  config.score.momentum = 0.0          # their SGD momentum
  config.score.weight_decay = 0.0      # their weight decay
  config.score.batch_size = 256        # real images per scoring step
  config.score.dsa_strategy = "none"   # their augmentation ("none": off)

  config.distill = ml_collections.ConfigDict()
  config.distill.method = "mtt"        # mtt | dc (gradient matching) | dm (distribution)
  config.distill.ipc = 1               # synthetic images per class
  config.distill.syn_steps = 20        # N: student steps per outer step
  config.distill.expert_epochs = 2     # M: target = expert epoch t + M
  config.distill.max_start_epoch = 20  # t ~ U{min_start_epoch .. max_start_epoch - 1}
  config.distill.min_start_epoch = 0   # lower bound of the start epoch t
  # DATM's expanding window: the upper bound grows from current_max_start_epoch to
  # max_start_epoch over the first expansion_end outer steps (0 = fixed window).
  config.distill.current_max_start_epoch = 0
  config.distill.expansion_end = 0
  config.distill.iterations = 5_000    # outer steps
  config.distill.lr_img = 1_000.0      # SGD on the images
  config.distill.img_momentum = 0.5    # SGD momentum on the images
  config.distill.lr_lr = 1e-5          # SGD on the student lr
  config.distill.lr_momentum = 0.5     # SGD momentum on the student lr
  config.distill.lr_teacher = 0.01     # initial student lr (the experts' lr)
  config.distill.syn_lr_param = "linear"   # linear (official, clamped) | log
  config.distill.min_syn_lr = 1e-6     # floor for the linear parameterisation
  config.distill.batch_syn = 0         # 0 (or >= the set size) = the whole set per step
  config.distill.pix_init = "real"     # real | noise | correct (real, classified
                                       # correctly by the first label expert: DATM)
  config.distill.soft_labels = False   # DATM: learnable soft labels (expert logits)
  config.distill.label_epoch = -1      # label experts' snapshot epoch (-1 = last)
  config.distill.label_experts = 0     # how many experts give labels (0 = all)
  config.distill.lr_y = 2.0            # SGD on the soft labels
  config.distill.label_momentum = 0.9   # SGD momentum on the soft labels
  config.distill.loss_threshold = 0.0  # DATM: skip updates when loss > it (0 = never)
  config.distill.dsa_strategy = DEFAULT_STRATEGY   # DSA on the student's batches ("none": off)
  # DC / DM (distill/methods/backbones.py): real images per class and match; DC's loop lengths
  # (0 = the official values by IPC); with expert.data_schedule="pad" (FIEX) the real
  # batches follow the scheduler, one scheduler epoch per `schedule_steps` outer steps.
  # Their nets train and evaluate at distill.lr_teacher.
  config.distill.batch_real = 256      # real images per class per match
  config.distill.dc_outer_loop = 0     # DC: matches per net (0 = by IPC)
  config.distill.dc_inner_loop = 0     # DC: net steps between matches (0 = by IPC)
  config.distill.schedule_steps = 10
  config.distill.param_mask = "none"   # none | depth | loss (PAD FIEM)
  config.distill.param_mask_ratio = 0.0   # fraction of the flattened params dropped
  # AST (distill/step.py, distill/representative.py): off by default; paper values
  # when on, the official code's as options.
  config.distill.balance_loss = False  # CE scaled by the start epoch's balance factor
  config.distill.balance_offset = 8.0  # vartheta
  config.distill.balance_log_base = 2.718281828459045   # paper: natural log; code: 5
  config.distill.intermediate = "none"   # none | equal (paper) | proportional (k/M)
  config.distill.perturb_rho = 0.0     # weight perturbation of the start (paper 0.1)
  config.distill.perturb_style = "filter"   # filter (paper) | tensor (code, rho 1)
  # perturb_normaliser: the matching distances are divided by |start - target|^2 with
  # the start after the perturbation (perturbed: AST's Eq. 22-23 and code) or before it
  # (expert: dd_jax's before 2026-12).
  config.distill.perturb_normaliser = "perturbed"
  config.distill.inner_momentum = 0.0  # the student's heavy-ball momentum (AST code 0.9)
  config.distill.kmeans_clusters = 10  # pix_init="kmeans": K = min(ipc, this) per class
  config.distill.kmeans_features = "penultimate"   # penultimate (paper) | logits (code)

  config.distill.parameterization = "pixels"   # pixels | glad (GAN latents, gan section) | hpd
  config.distill.remat = True          # rematerialise student steps in the backward pass
  config.distill.remat_policy = "nothing"   # what remat keeps: nothing | dots | dots_no_batch
  # experts_per_step: expert segments matched per outer step (vmapped over the mesh's
  # expert axis, the matching loss averaged); 1 = MTT.
  config.distill.experts_per_step = 1
  # expert_order: which expert a step matches. draw (MTT/AST Algorithm 1: tau ~ {tau_i}
  # every step; the official --load_all) | cycle (the official code's default: each
  # expert once per round, reshuffled every round)
  config.distill.expert_order = "draw"
  config.distill.eval_every = 500      # 0 = never (the export still happens at the end)
  config.distill.log_every = 10        # outer steps between metric writes (and at least
                                       # one progress line a minute)
  config.distill.checkpoint_every = 100   # outer steps between checkpoints
  config.distill.keep_checkpoints = 2   # checkpoints kept (older ones deleted)
  config.distill.snapshot_cache_mb = 1_024   # expert snapshots kept in memory
  # memory_limit_mb: a run whose estimated memory per device (dd_jax/memory.py) exceeds
  # it is refused; 0 = the device's memory, -1 = no check.
  config.distill.memory_limit_mb = 0
  # A step with a non-finite loss, lr or images is rolled back inside the compiled step
  # and every later update of the images, lr and labels is scaled by
  # nonfinite_lr_factor (1 = no reduction); max_bad_steps such steps in a row stop the run.
  config.distill.nonfinite_lr_factor = 0.5
  config.distill.max_bad_steps = 10    # consecutive non-finite steps before giving up

  # SeqMatch (distill/seqmatch.py): the IPC budget split into subsets distilled one
  # after another, earlier ones frozen in the inner loop. Per-subset tuples: () = the
  # distill value for every subset, else one value per subset.
  config.seqmatch = ml_collections.ConfigDict()
  config.seqmatch.subsets = ()         # images per class of each subset (sum = ipc); () = off
  config.seqmatch.min_start_epochs = ()   # per subset: distill.min_start_epoch
  config.seqmatch.max_start_epochs = ()   # per subset: distill.max_start_epoch
  config.seqmatch.syn_steps = ()       # per subset: distill.syn_steps
  config.seqmatch.iterations = ()      # per subset: distill.iterations
  config.seqmatch.lr_img = ()          # per subset: distill.lr_img
  config.seqmatch.lr_lr = ()           # per subset: distill.lr_lr
  config.seqmatch.lr_teacher = ()      # per subset: distill.lr_teacher
  config.seqmatch.expert_epochs = ()   # per subset: distill.expert_epochs (M)
  # experts: warm_start (the paper, Table 4 and the official code): subset k > 1 matches
  # experts trained from nets first trained on the earlier subsets, S1 then S1+S2, ...
  # (warm_start_epochs per stage, the evaluation recipe), so its window, from epoch 0,
  # is the training that comes after theirs; shared (ours, no extra experts): every
  # subset matches the same experts, each later subset's window after the one before.
  config.seqmatch.experts = "warm_start"
  config.seqmatch.warm_start_epochs = 1000

  # IDC (distill.method="idc", distill/idc.py): multi-formation images condensed by
  # gradient matching, the matching net also trained on real data between matches. It
  # uses distill.lr_img, img_momentum (per-class SGD steps, in pixel units), batch_real
  # (real images of a class per match and per net step) and lr_teacher (evaluation lr).
  config.idc = ml_collections.ConfigDict()
  config.idc.factor = 1                # each stored image decodes into factor^2 images (1 = off)
  config.idc.distance = "mse"          # mse | l1: summed over the conv kernels' gradients
  config.idc.matches = 100             # matches per outer step (the official inner_loop)
  config.idc.max_syn = 128             # decoded images of a class per match (random above)
  config.idc.match_strategy = "color_crop_cutout"   # every op in turn, one draw for real+syn
  config.idc.net_strategy = "color_crop"   # the net's real batches: every op, per-sample draws
  config.idc.net_steps = 8             # net SGD steps on real batches after each match
  config.idc.net_lr = 0.01             # the matching net's SGD lr
  config.idc.net_momentum = 0.9        # ... its momentum
  config.idc.net_weight_decay = 5e-4   # ... its weight decay
  config.idc.cutmix_prob = 0.5         # CutMix (Beta(1, 1) boxes) on the net's real batches
  config.idc.fix_iter = 1              # outer steps one matching-net start serves: 1 = a
                                       # fresh net every step (IDC); SeqMatch-IDC's script 50

  # The GAN prior (dd_jax/gan): "trained" = the small generator python -m dd_jax.gan.train
  # fits to the run's data (trained first when `dir` has none), "random" = the same
  # architecture seeded (GLaD's random prior), or the folder of a converted StyleGAN-XL.
  config.gan = ml_collections.ConfigDict()
  config.gan.prior = "trained"         # trained | random | a converted generator's folder
  config.gan.class_map = ()            # prior class of each data class (ImageNet subsets)
  config.gan.dir = ""                  # "" = <workdir>/prior
  config.gan.resolution = 32           # power of two; images are resized to the data's
  config.gan.num_layers = 4            # synthesis layers before ToRGB
  config.gan.channel_base = 1024       # per-layer channels: min(base / 2 / cutoff, channel_max)
  config.gan.channel_max = 32          # at most this many channels per layer
  config.gan.w_dim = 64                # style vector w size
  config.gan.z_dim = 32                # latent z size
  config.gan.margin = 2                # feature-map border in px (StyleGAN3: 10; see gan/build.py)
  config.gan.mapping_lr_multiplier = 1.0   # StyleGAN: 0.01 (its mapping learns 100x slower)
  config.gan.train_steps = 800         # the small prior's training (a conditional VAE)
  config.gan.batch_size = 32           # real images per prior training step
  config.gan.lr = 2e-3                 # Adam lr of the prior's training
  config.gan.recon_sigma = 0.25        # decoder noise: reconstruction weight 1/(2 sigma^2)
  config.gan.class_weight = 10.0       # auxiliary class terms (samples show their class)
  config.gan.encoder_width = 32        # the VAE encoder's ConvNet width
  config.gan.calibrate_every = 20      # steps between magnitude_ema re-estimates
  config.gan.log_every = 20            # prior steps between log lines

  # GLaD (distill/latent.py): f after the first `layer` generator layers, W+ latents;
  # SGD momentum 0.5 with separate lrs (GLaD's MTT values: lr_w 10, lr_f 10,000).
  config.glad = ml_collections.ConfigDict()
  config.glad.layer = -1               # -1: the prior's middle layer
  config.glad.lr_w = 10.0              # SGD lr of the style vectors w
  config.glad.lr_f = 10_000.0          # SGD lr of the feature map f
  config.glad.momentum = 0.5           # SGD momentum of both
  config.glad.init = "sample"          # sample (z ~ N(0, I)) | average (class mean of w)
  config.glad.average_samples = 1000   # z draws per class for init="average"
  config.glad.chunk = 10               # images rendered together (rematerialised)
  config.glad.clip = 10.0              # |f| at initialisation

  # H-PD (distill/hpd.py, distill.parameterization="hpd"): GLaD's latents space by
  # space from start_layer (layers_per_space generator layers each; the paper's main
  # setting 2, hpd.txt Tables 12-14), steps_per_layer outer steps each (paper: MTT/DC
  # 100, DM 20), each space's best latents by the class-relevant feature distance (CAM
  # of a net with global pooling, trained here) carried to the next; the final set
  # chosen by held-out accuracy (select="accuracy", data.holdout_per_class) or distance.
  config.hpd = ml_collections.ConfigDict()
  config.hpd.start_layer = 1           # the first layer distilled
  config.hpd.steps_per_layer = 100     # outer steps at each layer
  config.hpd.layers_per_space = 1      # generator layers per optimisation space (Tables 12-14)
  config.hpd.record_every = 10         # steps between a space's checks (0: keep its last)
  config.hpd.search = "distance"       # what ranks a space's latents: distance | loss (Table 15)
  config.hpd.select = "distance"       # distance (the search) | accuracy (paper, l. 47) | last
  config.hpd.real_per_class = 100      # real images per class for the selection distance
  config.hpd.distance_net = "ResNet18"   # the CAM net: an arch trained here, or "expert"
  config.hpd.distance_epochs = 20      # its epochs on the training set (a CPU run: 2-5)
  config.hpd.distance_lr = 0.01        # its SGD lr (momentum 0.9, weight decay 5e-4)
  config.hpd.select_nets = 2           # select=accuracy: nets trained per recorded set
  config.hpd.select_epochs = 300       # select=accuracy: their epochs (eval.protocol's recipe)

  # Devices (dd_jax/sharding.py): the inner batch split over `data` devices, the
  # experts_per_step segments over `experts` devices. data=-1: as many as divide the batch.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1                # devices splitting the batch (-1: all that divide it)
  config.mesh.experts = 1              # devices splitting the experts_per_step segments

  # Multi-process runs (dd_jax/distributed.py; each field also from DD_JAX_* variables).
  config.distributed = ml_collections.ConfigDict()
  config.distributed.coordinator = ""  # host:port of process 0
  config.distributed.num_processes = 1   # processes in the run
  config.distributed.process_id = 0    # this process's rank (0 writes the outputs)
  config.distributed.auto = False      # JAX finds them (Cloud TPU VM slices, SLURM)

  config.eval = ml_collections.ConfigDict()
  config.eval.models = ("ConvNet",)    # architectures trained on the set (models.ARCHITECTURES)
  config.eval.num_nets = 5             # nets per architecture (mean +- std reported)
  config.eval.epochs = 1000            # epochs each (lr x0.1 at half, as the official code)
  config.eval.lr = 0.01                # for real subsets; distilled sets use their lr
  config.eval.momentum = 0.9           # SGD momentum
  config.eval.weight_decay = 5e-4      # L2 weight decay
  config.eval.batch_size = 256         # images per step
  config.eval.dsa_strategy = DEFAULT_STRATEGY   # DSA while training ("none": off)
  config.eval.source = "random_real"   # random_real | path to a synthetic-set .npz
  config.eval.ipc = 10                 # random_real: real images per class
  config.eval.seed = 0                 # seeds the nets and the random_real subset
  # baselines: at the end of a distillation, beside the final figure of its first
  # architecture, the initial set's (the step-0 evaluation's; trained at the end only when
  # the run has none) and a random real subset's of the same ipc (cached per data, ipc and
  # protocol in ~/.cache/dd_jax/baselines); a warning when the distilled set is not better
  config.eval.baselines = True
  config.eval.chunk_epochs = 100       # epochs per compiled call (a divisor of epochs; 0 = 100)
  # protocol: how the nets train: "mtt" (the official evaluate_synset: epochs + 1 epochs,
  # lr x0.1 after epoch epochs // 2 + 1 with a fresh SGD, one DSA op per batch), "legacy"
  # (dd_jax's before 2026-12: epochs epochs, x0.1 from epochs // 2, momentum kept; for
  # figures measured with it), "idc" (IDC's: lr x0.2 at 2/3 and 5/6, CutMix p 0.5,
  # flip and color on every batch plus one other DSA op), "ast" (AST's paper: x0.5 at
  # half of the epochs) or "ast_code" (the mtt schedule at x0.5, AST's code).
  config.eval.protocol = "mtt"
  # kd: knowledge-distillation evaluation (dd_jax/evaluate/kd.py), reported beside the
  # ordinary protocol: the nets also train on the set against a teacher's softened
  # outputs (kd_temperature T; the loss T^2 x KL), the teacher being expert 0's last
  # epoch in kd_teacher ("" = the run's experts).
  config.eval.kd = False
  config.eval.kd_temperature = 4.0
  config.eval.kd_teacher = ""
  return config


def apply_runlocal(config: ml_collections.ConfigDict) -> None:
  """A variant that runs in seconds on a laptop CPU: the tests use it."""
  config.data.train_per_class = 50
  config.data.test_limit = 500
  config.model.width = 16
  config.expert.num_experts = 2
  config.expert.epochs = 2
  config.expert.batch_size = 64
  config.eval.num_nets = 2
  config.eval.epochs = 4
  config.eval.ipc = 2
  config.distill.syn_steps = 5
  config.score.num_models = 2
  config.score.epochs = 2
  config.distill.expert_epochs = 1
  config.distill.max_start_epoch = 1
  config.distill.iterations = 4
  config.distill.eval_every = 2
  config.distill.log_every = 1
  config.distill.checkpoint_every = 2


def make(arg: str | None, per_ipc: dict[int, dict],
         dataset: Callable[[ml_collections.ConfigDict], None],
         method: Callable[[ml_collections.ConfigDict, dict], None] | None = None,
         ) -> ml_collections.ConfigDict:
  """The body of every experiment's `get_config`: defaults, the file's dataset fields
  (`dataset(config)`), the runlocal and ipc variants, then the method's switches
  (`method(config, args)`); locked."""
  args = parse_arg(arg)
  config = base_config()
  dataset(config)
  if args.get("runlocal"):
    apply_runlocal(config)
  apply_distill(config, per_ipc, args)
  if method is not None:
    method(config, args)
  args.check_all_read()
  config.lock()
  return config


# Variant `hour`: Fashion-MNIST MTT at IPC 1 within the hour on a 2-core CPU (the
# README's run command; 39 minutes measured, benchmarks/results/readme_command.json):
# 3 experts x 3 epochs, 500 outer steps with N=20, evaluated at the start and the end.
HOUR_RECIPE = {"expert.num_experts": 3, "expert.epochs": 3, "distill.syn_steps": 20,
               "distill.iterations": 500, "distill.eval_every": 500}


def hour_variant(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
  """Variant `hour` (HOUR_RECIPE): a run sized for a CPU."""
  if switch(args, "hour", default=False):
    set_fields(config, HOUR_RECIPE)


def switch(args: dict[str, str], name: str, default: bool = True) -> bool:
  """Variant switches such as `fiex=0` / `fiem=1`; `default` when not given."""
  if name not in args:
    return default
  return args[name].lower() not in ("0", "false", "off", "no")


def code_variant(config: ml_collections.ConfigDict, args: dict[str, str],
                 code: dict[int, dict] | None, ipc: int) -> bool:
  """Variant `code=1`: the official code's values where they differ from the paper
  (`code` maps IPC -> fields as `set_fields` takes them). True when applied."""
  if not switch(args, "code", default=False):
    return False
  if ipc not in (code or {}):
    raise ValueError(f"code=1: the official code's values are not recorded for ipc={ipc}; "
                     f"known: {sorted(code or {})}")
  set_fields(config, code[ipc])
  return True


def pad(addition_end: int, code: dict[int, dict] | None = None
        ) -> Callable[[ml_collections.ConfigDict, dict], None]:
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
  """PAD's switches on `config` (see `pad`): shared by the PAD, AST (`pad=1`) and
  SeqMatch (`pad=1`) variants."""
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


def apply_distill(config: ml_collections.ConfigDict, table: dict[int, dict],
                  args: dict[str, str]) -> None:
  """Sets distill.ipc (variant `ipc=<n>`, default the smallest in `table`) and the
  per-IPC settings the table gives for it, unless `runlocal` keeps them tiny."""
  ipc = int(args.get("ipc", min(table)))
  config.distill.ipc = ipc
  config.eval.ipc = ipc
  if args.get("runlocal"):
    return
  settings = table.get(ipc)
  if settings is None:
    raise ValueError(f"no settings for ipc={ipc} in this config; known: {sorted(table)}")
  set_fields(config, settings)


def set_fields(config: ml_collections.ConfigDict, settings: dict) -> None:
  """Sets {"field" (a distill field) or "section.field": value} on the config."""
  for key, value in settings.items():
    section, _, field = key.rpartition(".")
    target = config[section] if section else config.distill
    target[field] = value


def matching(method: str, iterations: int, lr_img: float, schedule_steps: int
             ) -> Callable[[ml_collections.ConfigDict, dict], None]:
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
        ) -> Callable[[ml_collections.ConfigDict, dict], None]:
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


def ast(pad_addition_end: int = 20) -> Callable[[ml_collections.ConfigDict, dict], None]:
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
  whole-tensor perturbation with rho 1, inner momentum 0.9, its evaluation schedule); `pad=1` adds PAD's modules on top (GSAM + scheduled experts, soft
  labels, depth mask `mask=<ratio>`, default 0.25), which keep PAD's expert length.
  """
  return functools.partial(apply_ast, pad_addition_end=pad_addition_end)


def apply_ast(config: ml_collections.ConfigDict, args: dict[str, str],
              pad_addition_end: int = 20) -> None:
  """AST's switches on `config` (see `ast`): shared by the AST and SeqMatch (`ast=1`)
  variants."""
  runlocal, code = bool(args.get("runlocal")), switch(args, "code", default=False)
  with_pad = switch(args, "pad", default=False)
  e, d = config.expert, config.distill
  if with_pad:
    apply_pad(config, args, pad_addition_end)
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
        ) -> Callable[[ml_collections.ConfigDict, dict], None]:
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
             ) -> Callable[[ml_collections.ConfigDict, dict], None]:
  """SeqMatch (Du et al.): the IPC split into subsets distilled one after another; `table`
  maps IPC -> seqmatch fields (subsets and per-subset values, Table 4's max start
  epochs on each subset's warm-started experts). Variants: `seq=0` (one set: plain MTT
  on the same settings), `warm=0` (ours: shared experts, the table's windows laid end to
  end, S1 on [0, e1), S2 on [e1, e1 + e2), ..., experts trained long enough), `code=1` (the official scripts' values
  where they differ from the table: `code` maps IPC -> fields), `pad=1` / `ast=1` (PAD's
  or AST's switches on every subset)."""

  def method(config: ml_collections.ConfigDict, args: dict[str, str]) -> None:
    runlocal = bool(args.get("runlocal"))
    if switch(args, "pad", default=False):
      apply_pad(config, args, 20)
    if switch(args, "ast", default=False):
      apply_ast(config, args)
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
