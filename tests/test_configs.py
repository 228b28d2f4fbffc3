"""Every experiment config loads for each of its variants and passes validation."""
import importlib
import itertools

import pytest

from dd_jax.distill import run

FILES = ("fashion_mnist_mtt", "mnist_mtt", "cifar10_mtt", "cifar100_mtt",
         "tiny_imagenet_mtt", "fashion_mnist_pad", "cifar10_pad", "cifar100_pad",
         "tiny_imagenet_pad", "fashion_mnist_dc", "fashion_mnist_dm", "cifar10_dc",
         "cifar10_dm", "fashion_mnist_ast", "cifar10_ast", "cifar100_ast",
         "tiny_imagenet_ast")
# (outer iterations, expert epochs) of the full settings: MTT's, PAD's, AST's.
FULL = {"mtt": (5_000, 50), "pad": (10_000, 100), "dc": (1_000, 50), "dm": (20_000, 50),
        "ast": (5_000, 50)}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("variant", ["ipc=1", "ipc=10", "ipc=50", "runlocal",
                                     "ipc=10,runlocal"])
def test_config_variants_are_valid(name, variant):
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config(variant)
  run.validate(config)
  ipc = int(variant.split("ipc=")[1].split(",")[0]) if "ipc=" in variant else 1
  assert config.distill.ipc == ipc
  if "runlocal" in variant:
    assert config.distill.iterations <= 10 and config.expert.num_experts <= 2
  else:
    assert (config.distill.iterations, config.expert.epochs) == FULL[name.split("_")[-1]]
    settings = module.PER_IPC[ipc]
    assert all(config.distill[k] == v for k, v in settings.items() if "." not in k)
    assert all(config.data[k[5:]] == v for k, v in settings.items() if k.startswith("data."))
  with pytest.raises(AttributeError):   # locked: a typo in an override is an error
    config.distill.syn_stepz = 3


def test_cifar10_follows_the_authors_settings():
  from configs import cifar10_mtt
  c = cifar10_mtt.get_config("ipc=1")
  assert (c.distill.syn_steps, c.distill.expert_epochs, c.distill.max_start_epoch,
          c.distill.lr_img, c.distill.lr_lr, c.data.zca) == (50, 2, 2, 100.0, 1e-7, True)
  assert cifar10_mtt.get_config("ipc=50").data.zca is False


def test_the_hour_variant_sizes_fashion_mnist_ipc1_for_a_cpu():
  from configs import fashion_mnist_mtt, variants
  c = fashion_mnist_mtt.get_config("ipc=1,hour")
  run.validate(c)
  assert (c.expert.num_experts, c.expert.epochs, c.distill.syn_steps, c.distill.iterations,
          c.distill.eval_every) == (3, 3, 20, 500, 500) == tuple(variants.HOUR_RECIPE.values())
  assert (c.distill.expert_epochs, c.distill.lr_img) == (2, 1000.0)   # the rest: IPC 1's
  with pytest.raises(ValueError, match="did you mean hour"):
    fashion_mnist_mtt.get_config("ipc=1,houre")


def test_unknown_ipc_variant_is_explained():
  from configs import cifar10_mtt
  with pytest.raises(ValueError, match="no settings for ipc=7"):
    cifar10_mtt.get_config("ipc=7")


def test_pad_variants_switch_its_modules_and_both_off_is_datm():
  from configs import cifar10_pad
  c = cifar10_pad.get_config("ipc=10")
  assert (c.expert.data_schedule, c.expert.sam, c.expert.schedule.addition_end) == (
      "pad", "gsam", 20)
  # alpha: Table 10's 25% (pad.txt line 471); the official IPC10.yaml's 0.5 is code=1
  assert (c.distill.param_mask, c.distill.param_mask_ratio) == ("depth", 0.25)
  assert cifar10_pad.get_config("ipc=10,code=1").distill.param_mask_ratio == 0.5
  assert c.distill.soft_labels and c.distill.pix_init == "correct"
  assert (c.distill.current_max_start_epoch, c.distill.expansion_end) == (10, 1_000)
  datm = cifar10_pad.get_config("ipc=10,fiex=0,fiem=0")
  assert datm.expert.data_schedule == "none" and datm.expert.sam == "gsam"
  assert (datm.distill.param_mask, datm.distill.param_mask_ratio) == ("none", 0.0)
  assert datm.distill.soft_labels
  assert cifar10_pad.get_config("ipc=1").distill.param_mask == "none"   # alpha 0 at IPC1


def test_dc_and_dm_take_pad_modules_as_variants():
  from configs import cifar10_dc, cifar10_dm
  dc = cifar10_dc.get_config("ipc=10")
  assert (dc.distill.method, dc.distill.lr_img, dc.distill.param_mask) == ("dc", 0.1, "none")
  assert dc.expert.data_schedule == "none"
  dm = cifar10_dm.get_config("ipc=10,fiex=1,fiem=1")
  assert (dm.distill.method, dm.distill.lr_img, dm.distill.schedule_steps) == ("dm", 1.0, 200)
  assert (dm.expert.data_schedule, dm.distill.param_mask, dm.distill.param_mask_ratio) == (
      "prune", "depth", 0.25)    # static removal of the hardest 20% (PAD Table 6b)
  assert (dm.expert.schedule.prune, dm.expert.schedule.prune_fraction) == ("hard", 0.2)


def test_pad_ablation_variants_mask_deep_layers_and_rank_by_uncertainty():
  from configs import cifar10_pad
  c = cifar10_pad.get_config("ipc=10,fiem=deep,mask=0.5,score=uncertainty")
  assert (c.distill.param_mask, c.distill.param_mask_ratio) == ("deep", 0.5)
  assert c.score.method == "uncertainty" and c.expert.data_schedule == "pad"
  assert cifar10_pad.get_config("ipc=10").distill.param_mask == "depth"


def test_ast_variants_switch_one_piece_each_and_code_takes_the_official_values():
  from configs import cifar100_ast
  c = cifar100_ast.get_config("ipc=1")
  e, d = c.expert, c.distill
  assert (e.momentum, e.clip_epochs, e.gp_weight, e.gp_norm) == (0.9, 5, 1.0, "sample")
  # the paper gives no expert lr or weight decay: buffer.py's; halved after epoch 25 and
  # 50 experts (ast.txt lines 350, 320)
  assert (e.lr, e.weight_decay, e.num_experts) == (0.003, 1e-3, 50)
  assert (e.lr_schedule, tuple(e.lr_step_after), e.lr_step_factor, e.lr_step_reset) == (
      "step", (25,), 0.5, False)
  assert (c.eval.protocol, d.perturb_normaliser) == ("ast", "perturbed")
  assert (d.pix_init, d.kmeans_features, d.balance_loss, d.intermediate, d.perturb_rho,
          d.perturb_style, d.inner_momentum) == ("kmeans", "penultimate", True, "equal",
                                                 0.1, "filter", 0.0)
  assert (d.syn_steps, d.expert_epochs, d.max_start_epoch) == (20, 3, 20)
  code = cifar100_ast.get_config("ipc=1,code=1")
  assert (code.expert.clip_epochs, code.expert.gp_weight, code.expert.gp_norm,
          code.expert.lr, code.expert.weight_decay) == (10, 2.0, "channel", 0.003, 1e-3)
  assert (tuple(code.expert.lr_step_after), code.expert.lr_step_factor,
          code.expert.lr_step_reset, code.expert.num_experts, code.eval.protocol) == (
              (27,), 0.6, True, 100, "ast_code")
  assert (code.distill.balance_log_base, code.distill.kmeans_features,
          code.distill.perturb_style, code.distill.perturb_rho,
          code.distill.inner_momentum) == (5.0, "logits", "tensor", 1.0, 0.9)
  mtt = cifar100_ast.get_config("ipc=1,smooth=0,init=0,balance=0,inter=0,perturb=0")
  base = cifar100_ast.get_config("ipc=1")
  for piece, field in (("smooth", "expert.gp_weight"), ("init", "distill.pix_init"),
                       ("balance", "distill.balance_loss"),
                       ("inter", "distill.intermediate"),
                       ("perturb", "distill.perturb_rho")):
    section, name = field.split(".")
    off = cifar100_ast.get_config(f"ipc=1,{piece}=0")
    assert off[section][name] == mtt[section][name] != base[section][name]
  both = cifar100_ast.get_config("ipc=10,pad=1")
  assert both.expert.sam == "gsam" and both.distill.soft_labels and both.expert.epochs == 100
  run.validate(both)


@pytest.mark.parametrize("name", ["fashion_mnist_seqmatch", "cifar10_seqmatch",
                                  "cifar100_seqmatch"])
@pytest.mark.parametrize("variant", ["ipc=10", "ipc=50", "runlocal", "ipc=10,warm=0",
                                     "runlocal,warm=0", "ipc=10,pad=1", "ipc=50,ast=1",
                                     "ipc=10,seq=0"])
def test_seqmatch_configs_split_the_ipc_and_compose(name, variant):
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config(variant)
  run.validate(config)
  s, d = config.seqmatch, config.distill
  if "seq=0" in variant:
    assert s.subsets == () and d.ipc == 10
    return
  assert sum(s.subsets) == d.ipc and len(s.subsets) == (2 if d.ipc <= 10 else 3)
  # The paper's reading by default: later subsets on warm-started experts.
  assert s.experts == ("shared" if "warm=0" in variant else "warm_start")
  if "runlocal" not in variant:
    assert all(config.distill[k] == v for k, v in module.PER_IPC[d.ipc].items()
               if "." not in k)
    windows = module.SEQMATCH[d.ipc]["max_start_epochs"]
    if "warm=0" in variant:   # shared experts: the windows end to end, each later
      ends = tuple(itertools.accumulate(windows))
      assert tuple(s.max_start_epochs) == ends
      assert tuple(s.min_start_epochs) == (0,) + ends[:-1]
    else:
      assert tuple(s.max_start_epochs) == windows and tuple(s.min_start_epochs) == ()
  assert d.soft_labels == ("pad=1" in variant)
  assert (d.intermediate != "none") == ("ast=1" in variant)


@pytest.mark.parametrize("name", ["fashion_mnist_hpd", "cifar10_hpd", "imagenette_hpd"])
@pytest.mark.parametrize("variant, param, method", [
    ("ipc=1", "hpd", "mtt"), ("ipc=10,glad=1", "glad", "mtt"), ("ipc=1,method=dm", "hpd", "dm"),
    ("ipc=1,method=dc,glad=1", "glad", "dc"), ("runlocal", "hpd", "mtt")])
def test_hpd_configs_take_glads_rates_per_objective(name, variant, param, method):
  from configs import variants
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  run.validate(config)
  assert (config.distill.parameterization, config.distill.method) == (param, method)
  assert (config.glad.lr_w, config.glad.lr_f) == variants.GLAD_LRS[method]
  if param == "hpd" and "runlocal" not in variant:
    assert config.hpd.steps_per_layer == (20 if method == "dm" else 100)


def test_no_variant_calls_another_and_the_defaults_sections_are_in_file_order():
  """configs/variants.py: each variant sets its own fields (files compose them);
  configs/defaults.py: SECTIONS lists the field functions in file order (the reference
  reads the file in that order)."""
  import ast as python_ast
  import inspect
  from configs import defaults, variants
  tree = python_ast.parse(inspect.getsource(variants))
  functions = {n.name: n for n in tree.body if isinstance(n, python_ast.FunctionDef)}
  helpers = {"when"}   # applies the variant it is given
  for name, node in functions.items():
    called = {c.func.id for c in python_ast.walk(node)
              if isinstance(c, python_ast.Call) and isinstance(c.func, python_ast.Name)}
    called |= {a.id for c in python_ast.walk(node) if isinstance(c, python_ast.Call)
               for a in c.args if isinstance(a, python_ast.Name)}   # functools.partial(f)
    others = (called & set(functions)) - helpers - {name, f"apply_{name}"}
    assert not others, f"variant {name} calls {others}"
  lines = [inspect.getsourcelines(f)[1] for f in defaults.SECTIONS]
  assert lines == sorted(lines) and len(set(defaults.SECTIONS)) == len(defaults.SECTIONS)
  top = [n.name for n in python_ast.parse(inspect.getsource(defaults)).body
         if isinstance(n, python_ast.FunctionDef)]
  assert top == ["base_config"] + [f.__name__ for f in defaults.SECTIONS]
