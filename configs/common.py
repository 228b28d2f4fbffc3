"""How an experiment file becomes a config: the defaults (configs/defaults.py), the
file's dataset fields, the `runlocal` and `ipc=<n>` variants, then the method's variants
(configs/variants.py) in the order the file lists them, e.g.
`--config=configs/fashion_mnist_mtt.py:ipc=10,runlocal`.
"""
from __future__ import annotations

import difflib
from typing import Callable

import ml_collections

from configs.defaults import base_config

# A variant: reads its switches from the parsed arguments (`switch(args, "fiex")`) and
# sets fields on the config; it never calls another variant (the file lists each one).
Variant = Callable[[ml_collections.ConfigDict, dict], None]


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
         *variants: Variant) -> ml_collections.ConfigDict:
  """The body of every experiment's `get_config`: defaults, the file's dataset fields
  (`dataset(config)`), the runlocal and ipc variants, then the method's variants
  (`variant(config, args)`, configs/variants.py) in the order given; locked."""
  args = parse_arg(arg)
  config = base_config()
  dataset(config)
  if args.get("runlocal"):
    apply_runlocal(config)
  apply_distill(config, per_ipc, args)
  for variant in variants:
    variant(config, args)
  args.check_all_read()
  config.lock()
  return config


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


