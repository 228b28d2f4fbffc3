"""Every config field's default, one function per owner (a method's fields together),
applied in SECTIONS order = file order (docs/config.md is read from the comments)."""
from __future__ import annotations

import ml_collections

from dd_jax.data.augment import DEFAULT_STRATEGY


def base_config() -> ml_collections.ConfigDict:
  """Every field at its default."""
  config = ml_collections.ConfigDict()
  config.seed = 0                      # seeds every random draw: subsets, experts, init, steps
  for add_fields in SECTIONS:
    add_fields(config)
  return config


def data_fields(config: ml_collections.ConfigDict) -> None:
  """The data: dd_jax/data (pipeline.py, sources.py, preprocess.py)."""
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


def model_fields(config: ml_collections.ConfigDict) -> None:
  """The nets: dd_jax/models (ARCHITECTURES)."""
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


def expert_fields(config: ml_collections.ConfigDict) -> None:
  """The expert trajectories: dd_jax/experts/train.py (GSAM for DATM and PAD)."""
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


def ast_expert_fields(config: ml_collections.ConfigDict) -> None:
  """AST's smooth experts: dd_jax/experts/train.py."""
  # AST's smooth experts: the CE scaled from clip_start up to 1 over the first
  # clip_epochs epochs (paper 5, code 10; 0 = off) and the gradient penalty
  # gp_weight * E[(|grad_x sum logits| - gp_target)^2] (paper mu 1, code 2; 0 = off),
  # the norm per image ("sample", paper) or over channels per pixel ("channel", code).
  config.expert.clip_epochs = 0
  config.expert.clip_start = 0.5
  config.expert.gp_weight = 0.0
  config.expert.gp_target = 1.0
  config.expert.gp_norm = "sample"     # sample (paper: per image) | channel (code: per pixel)


def pad_expert_fields(config: ml_collections.ConfigDict) -> None:
  """PAD's expert data scheduler (FIEX) and DC/DM pruning: dd_jax/experts/schedule.py."""
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


def score_fields(config: ml_collections.ConfigDict) -> None:
  """PAD's difficulty scores: dd_jax/experts/score.py."""
  config.score = ml_collections.ConfigDict()   # PAD's difficulty scores (experts/score.py)
  config.score.method = "el2n"   # el2n | loss | uncertainty | entropy | grand (higher = harder)
  config.score.num_models = 5          # scores averaged over this many models
  config.score.epochs = 10             # each trained this long (early training)
  config.score.lr = 0.01               # the scoring models' SGD lr
  config.score.momentum = 0.0          # their SGD momentum
  config.score.weight_decay = 0.0      # their weight decay
  config.score.batch_size = 256        # real images per scoring step
  config.score.dsa_strategy = "none"   # their augmentation ("none": off)


def distill_fields(config: ml_collections.ConfigDict) -> None:
  """Trajectory matching (MTT), the fields every method reads: dd_jax/distill/methods/mtt.py."""
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
  # Multi-formation (IDC's parameterisation) under MTT, decoded in the unroll: each stored
  # image holds f x f images (distill/multiformation.py; IDC's own: idc.factor).
  config.distill.formation_factor = 1   # f (1 = off); batch_syn counts decoded images
  config.distill.dsa_strategy = DEFAULT_STRATEGY   # DSA on the student's batches ("none": off)


def datm_fields(config: ml_collections.ConfigDict) -> None:
  """DATM's soft labels and loss threshold: dd_jax/distill/labels.py."""
  config.distill.soft_labels = False   # DATM: learnable soft labels (expert logits)
  config.distill.label_epoch = -1      # label experts' snapshot epoch (-1 = last)
  config.distill.label_experts = 0     # how many experts give labels (0 = all)
  config.distill.lr_y = 2.0            # SGD on the soft labels
  config.distill.label_momentum = 0.9   # SGD momentum on the soft labels
  config.distill.loss_threshold = 0.0  # DATM: skip updates when loss > it (0 = never)


def matching_fields(config: ml_collections.ConfigDict) -> None:
  """DC / DM: dd_jax/distill/methods/backbones.py."""
  # Real images per class and match; DC's loop lengths (0 = the official values by IPC);
  # with FIEX the real batches follow the scheduler, one scheduler epoch per
  # `schedule_steps` outer steps. Their nets train and evaluate at distill.lr_teacher.
  config.distill.batch_real = 256      # real images per class per match
  config.distill.dc_outer_loop = 0     # DC: matches per net (0 = by IPC)
  config.distill.dc_inner_loop = 0     # DC: net steps between matches (0 = by IPC)
  config.distill.schedule_steps = 10


def pad_mask_fields(config: ml_collections.ConfigDict) -> None:
  """PAD's parameter mask (FIEM): dd_jax/losses.py (MASK_RULES)."""
  config.distill.param_mask = "none"   # none | depth | loss (PAD FIEM)
  config.distill.param_mask_ratio = 0.0   # fraction of the flattened params dropped


def ast_fields(config: ml_collections.ConfigDict) -> None:
  """AST's distillation terms: dd_jax/distill/methods/mtt.py, distill/representative.py."""
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


def loop_fields(config: ml_collections.ConfigDict) -> None:
  """The generic loop (dd_jax/distill/loop.py): parameterisation, memory, cadence, checkpoints, guard."""
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


def seqmatch_fields(config: ml_collections.ConfigDict) -> None:
  """SeqMatch: dd_jax/distill/seqmatch.py."""
  # The IPC budget split into subsets distilled one after another, earlier ones frozen in
  # the inner loop. Per-subset tuples: () = the distill value for every subset.
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


def idc_fields(config: ml_collections.ConfigDict) -> None:
  """IDC: dd_jax/distill/methods/idc.py, distill/idc.py."""
  # Multi-formation images condensed by gradient matching, the matching net also trained
  # on real data between matches. It uses distill.lr_img, img_momentum (per-class SGD
  # steps, in pixel units), batch_real
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


def gan_fields(config: ml_collections.ConfigDict) -> None:
  """The GAN prior: dd_jax/gan."""
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


def glad_fields(config: ml_collections.ConfigDict) -> None:
  """GLaD: dd_jax/distill/methods/latents.py, distill/latent.py."""
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


def hpd_fields(config: ml_collections.ConfigDict) -> None:
  """H-PD: dd_jax/distill/hpd.py, distill/hpd_select.py."""
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


def mesh_fields(config: ml_collections.ConfigDict) -> None:
  """Devices: dd_jax/sharding.py."""
  # Devices (dd_jax/sharding.py): the inner batch split over `data` devices, the
  # experts_per_step segments over `experts` devices. data=-1: as many as divide the batch.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1                # devices splitting the batch (-1: all that divide it)
  config.mesh.experts = 1              # devices splitting the experts_per_step segments


def distributed_fields(config: ml_collections.ConfigDict) -> None:
  """Processes: dd_jax/distributed.py."""
  # Multi-process runs (dd_jax/distributed.py; each field also from DD_JAX_* variables).
  config.distributed = ml_collections.ConfigDict()
  config.distributed.coordinator = ""  # host:port of process 0
  config.distributed.num_processes = 1   # processes in the run
  config.distributed.process_id = 0    # this process's rank (0 writes the outputs)
  config.distributed.auto = False      # JAX finds them (Cloud TPU VM slices, SLURM)


def eval_fields(config: ml_collections.ConfigDict) -> None:
  """The evaluation: dd_jax/evaluate (protocol.py, kd.py, baselines.py)."""
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


SECTIONS = (data_fields, model_fields, expert_fields, ast_expert_fields,
            pad_expert_fields, score_fields, distill_fields, datm_fields,
            matching_fields, pad_mask_fields, ast_fields, loop_fields, seqmatch_fields,
            idc_fields, gan_fields, glad_fields, hpd_fields, mesh_fields,
            distributed_fields, eval_fields)
