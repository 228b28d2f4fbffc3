"""The papers' hyperparameter tables, transcribed once from shared/papers (file and lines
named), with the official code's values where they differ. tests/test_paper_settings.py
checks every config against them; the tables in docs/methods.md are generated from them:

    python -m configs.papers            # rewrites the generated blocks of docs/methods.md
    python -m configs.papers --check    # exit 1 when they are out of date

A row holds the paper's values by our field names: scalars apply to every subset, tuples
give one value per subset (SeqMatch); `None` is a "-" in the paper (the field then keeps
the config's default meaning, e.g. batch_syn: one batch of the whole subset).
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS_MD = os.path.join(os.path.dirname(HERE), "docs", "methods.md")


@dataclasses.dataclass(frozen=True)
class PaperTable:
  name: str                    # the block's name in docs/methods.md
  source: str                  # where the values were read
  config: str                  # the config file per dataset ("{dataset}")
  fields: tuple[str, ...]      # the columns, by our field names
  rows: dict                   # (dataset, ipc) -> {field: value}
  code: dict                   # (dataset, ipc) -> {field: the official code's value}
  code_source: str = ""
  option: str = "code=1"       # the variant that takes the code's values
  missing: dict = dataclasses.field(default_factory=dict)   # (dataset, ipc) -> why absent
  variant: str = ""            # the variant the rows apply under (e.g. "fiex=1,fiem=1")


SEQMATCH = PaperTable(
    name="seqmatch",
    source="seqmatch.txt lines 295-304 (Table 4; K from lines 64 and 294)",
    config="configs/{dataset}_seqmatch.py",
    fields=("K", "max_start_epochs", "syn_steps", "expert_epochs", "batch_syn", "lr_img",
            "lr_lr", "lr_teacher"),
    rows={
        ("cifar10", 10): dict(K=2, max_start_epochs=(20, 10), syn_steps=(30, 80),
                              expert_epochs=(2, 3), batch_syn=None, lr_img=100.0,
                              lr_lr=1e-5, lr_teacher=0.001),
        ("cifar10", 50): dict(K=3, max_start_epochs=(20, 20, 10), syn_steps=30,
                              expert_epochs=2, batch_syn=None, lr_img=100.0, lr_lr=1e-5,
                              lr_teacher=0.01),
        ("cifar100", 10): dict(K=2, max_start_epochs=(20, 40), syn_steps=30,
                               expert_epochs=2, batch_syn=None, lr_img=1000.0,
                               lr_lr=1e-5, lr_teacher=0.01),
        ("cifar100", 50): dict(K=3, max_start_epochs=(40, 20, 20), syn_steps=80,
                               expert_epochs=2, batch_syn=125, lr_img=1000.0,
                               lr_lr=1e-5, lr_teacher=0.01),
        ("tiny_imagenet", 10): dict(K=2, max_start_epochs=(20, 10), syn_steps=20,
                                    expert_epochs=2, batch_syn=100, lr_img=10000.0,
                                    lr_lr=1e-4, lr_teacher=0.01),
        ("imagenet_subsets", 10): dict(K=2, max_start_epochs=(10, 5), syn_steps=20,
                                       expert_epochs=2, batch_syn=20, lr_img=100000.0,
                                       lr_lr=1e-6, lr_teacher=0.01),
    },
    code={("cifar10", 50): {"lr_teacher": (0.001, 0.01, 0.01), "zca": True}},
    code_source="shqii1j/seqmatch seqmatch-mtt/run.sh (its only MTT command); its "
                "randint(0, e - M) draws start epochs up to M below the table's e",
    missing={("imagenet_subsets", 10): "no ImageNet-subset data source yet"},
)

def _pad_rows(rows: dict) -> dict:
  keys = ("param_mask_ratio", "syn_steps", "expert_epochs", "min_start_epoch",
          "current_max_start_epoch", "max_start_epoch", "interval", "batch_syn", "lr_y",
          "lr_img")
  return {k: dict(zip(keys, v)) for k, v in rows.items()}


# Table 10's columns: alpha (FIEM's share of the shallow parameters masked), N, M, T-, T,
# T+, Interval (outer steps per epoch the window's upper bound grows, T -> T+; "-" = a
# fixed window), synthetic batch, lr of the labels, lr of the pixels. IR 0.75 and AEE
# (addition end) per dataset are printed on each dataset's first row.
PAD = PaperTable(
    name="pad",
    source="pad.txt lines 462-482 (Table 10; one removal of the easiest 10%, lines 100 "
           "and 458)",
    config="configs/{dataset}_pad.py",
    fields=("param_mask_ratio", "syn_steps", "expert_epochs", "min_start_epoch",
            "current_max_start_epoch", "max_start_epoch", "interval", "batch_syn", "lr_y",
            "lr_img"),
    rows=_pad_rows({
        ("cifar10", 1): (0.0, 80, 2, 0, 4, 4, None, 10, 5.0, 100.0),
        ("cifar10", 10): (0.25, 80, 2, 0, 10, 20, 100, 100, 2.0, 100.0),
        ("cifar10", 50): (0.25, 80, 2, 0, 20, 40, 100, 500, 2.0, 1000.0),
        ("cifar10", 500): (0.5, 80, 2, 40, 60, 60, None, 1000, 10.0, 50.0),
        ("cifar10", 1000): (0.75, 80, 2, 40, 60, 60, None, 1000, 10.0, 50.0),
        ("cifar100", 1): (0.0, 40, 3, 0, 10, 20, 100, 100, 10.0, 1000.0),
        ("cifar100", 10): (0.25, 80, 2, 0, 20, 40, 100, 1000, 10.0, 1000.0),
        ("cifar100", 50): (0.5, 80, 2, 40, 60, 80, 100, 1000, 10.0, 1000.0),
        ("cifar100", 100): (0.5, 80, 2, 40, 80, 80, None, 1000, 10.0, 50.0),
        ("tiny_imagenet", 1): (0.0, 60, 2, 0, 15, 30, 400, 200, 10.0, 10000.0),
        ("tiny_imagenet", 10): (0.25, 60, 2, 0, 20, 40, 100, 250, 10.0, 100.0),
        ("tiny_imagenet", 50): (0.5, 80, 2, 20, 40, 60, 100, 250, 10.0, 100.0),
    }),
    code={},   # filled below from the configs' CODE tables (the official YAMLs)
    code_source="NUS-HPC-AI-Lab/PAD configs/<dataset>/ConvIN/IPC<n>.yaml and the README "
                "command (a second removal, 20% after epoch 60); a YAML window without "
                "expansion shows as T = T+",
)
PAD_FIEX = {"cifar10": dict(initial_ratio=0.75, addition_end=20),
            "cifar100": dict(initial_ratio=0.75, addition_end=40),
            "tiny_imagenet": dict(initial_ratio=0.75, addition_end=40)}


def _pad_code() -> dict:
  """The official YAML values as Table 10's columns, read from the configs' CODE."""
  import importlib
  out = {}
  for dataset in PAD_FIEX:
    code = importlib.import_module(f"configs.{dataset}_pad").CODE
    for ipc, fields in code.items():
      row = dict(PAD.rows[(dataset, ipc)])
      row.update({k: v for k, v in fields.items() if k in row})
      if fields.get("expansion_end"):
        row["interval"] = fields["expansion_end"] // (row["max_start_epoch"]
                                                      - row["current_max_start_epoch"])
      elif fields.get("current_max_start_epoch") == 0 or row["interval"] is None:
        # a fixed window: T = T+
        row["current_max_start_epoch"], row["interval"] = row["max_start_epoch"], None
      out[(dataset, ipc)] = {k: v for k, v in row.items()
                             if v != PAD.rows[(dataset, ipc)][k]}
  return out


# PAD on DC and DM (pad.txt lines 380-417, Appendix A.1): FIEX removes a fixed share of
# each class, the hardest at small IPC and the easiest at large IPC (lines 386 and 390),
# the share being Table 6's best; FIEM masks the shallowest parameters, the share being
# Table 7's best. The tables are CIFAR-10's only (the other datasets' DC/DM configs take
# them too); IPC 50 is in neither, IPC 1 not in Table 7 (the config then refuses the
# variant, naming the fields to set). The official PAD repository has no DC/DM code.
def _matching(method: str, rows: dict) -> PaperTable:
  return PaperTable(
      name=f"pad_{method}",
      source=f"pad.txt lines 394-417 (Table 6{'ab'[method == 'dm']}: best removal ratio; "
             f"Table 7{'ab'[method == 'dm']}: best masked ratio)",
      config="configs/{dataset}_" + method + ".py", variant="fiex=1,fiem=1",
      fields=("prune", "prune_fraction", "param_mask_ratio"),
      rows={("cifar10", ipc): dict(zip(("prune", "prune_fraction", "param_mask_ratio"), v))
            for ipc, v in rows.items()},
      code={})


PAD_DC = _matching("dc", {1: ("hard", 0.2, None), 10: ("hard", 0.25, 0.25),
                          500: ("easy", 0.1, 0.75)})
PAD_DM = _matching("dm", {1: ("hard", 0.5, None), 10: ("hard", 0.2, 0.25),
                          500: ("easy", 0.15, 0.75)})
PAD_MATCHING = {"dc": PAD_DC, "dm": PAD_DM}

@dataclasses.dataclass(frozen=True)
class Setting:
  """One hyperparameter or component of a paper stated once for all settings."""
  what: str                    # in the paper's words
  field: str                   # our field, "section.field"
  paper: object                # the paper's value, by our field's meaning
  source: str                  # where the paper says it
  code: object = None          # the official code's value where it differs
  deviation: str = ""          # why our default differs from the paper (rarely)


@dataclasses.dataclass(frozen=True)
class SettingsTable:
  """A paper's global settings, checked against one config (`config`, a "file:variant")
  and its `code=1` variant; the "ours" column is read from the config when rendered."""
  name: str
  source: str
  config: str
  settings: tuple[Setting, ...]
  option: str = "code=1"

  def load(self, code: bool = False):
    import importlib
    path, _, variant = self.config.partition(":")
    module = importlib.import_module(path.replace("/", ".").removesuffix(".py"))
    return module.get_config(variant + (f",{self.option}" if code else ""))


def field_value(config, field: str):
  section, _, name = field.rpartition(".")
  value = config[section][name]
  return tuple(value) if isinstance(value, (list, tuple)) else value


AST = SettingsTable(
    name="ast", source="ast.txt (lines 320, 350; Eq. 22-23)",
    config="configs/cifar10_ast.py:ipc=10",
    settings=(
        Setting("expert trajectories", "expert.num_experts", 50, "line 320", code=100),
        Setting("epochs per expert", "expert.epochs", 50, "lines 320, 350"),
        Setting("expert optimiser: SGD with momentum", "expert.momentum", 0.9, "line 350"),
        Setting("clipped loss: lambda 0.5 -> 1 over the first epochs", "expert.clip_epochs",
                5, "line 350", code=10),
        Setting("gradient penalty mu", "expert.gp_weight", 1.0, "line 350", code=2.0),
        Setting("gradient penalty norm (per image)", "expert.gp_norm", "sample", "Eq. 9",
                code="channel"),
        Setting("expert lr reduced at epoch", "expert.lr_step_after", (25,), "line 350",
                code=(27,)),
        Setting("... by the factor", "expert.lr_step_factor", 0.5, "line 350", code=0.6),
        Setting("K-Means features for the initialisation", "distill.kmeans_features",
                "penultimate", "Sec. IV-C1", code="logits"),
        Setting("balanced loss vartheta", "distill.balance_offset", 8.0, "line 350"),
        Setting("balanced loss log base (natural)", "distill.balance_log_base",
                2.718281828459045, "Eq. 13", code=5.0),
        Setting("intermediate matching, equal scale beta", "distill.intermediate", "equal",
                "line 350"),
        Setting("weight perturbation rho", "distill.perturb_rho", 0.1, "line 350", code=1.0),
        Setting("... filter-normalised", "distill.perturb_style", "filter", "Eq. 20",
                code="tensor"),
        Setting("matching normalised by the perturbed start", "distill.perturb_normaliser",
                "perturbed", "Eq. 22-23"),
        Setting("student inner momentum (none)", "distill.inner_momentum", 0.0, "Eq. 1",
                code=0.9),
        Setting("evaluation: 1000 iterations, lr halved at 500", "eval.protocol", "ast",
                "line 350", code="ast_code"),
    ))

HPD = SettingsTable(
    name="hpd", source="hpd.txt (Sec. 3.3-3.4, Appendix B.4-B.5)",
    config="configs/fashion_mnist_hpd.py:ipc=1",
    settings=(
        Setting("generator layers per optimisation space", "hpd.layers_per_space", 2,
                "lines 288, 299 (Tables 12-14)", code=1),
        Setting("steps per space (MTT/DC; DM 20)", "hpd.steps_per_layer", 100,
                "lines 128, 299"),
        Setting("a space's best latents passed on (checks every k steps)",
                "hpd.record_every", 10, "line 9, Sec. 3.3 (k not given)", code=0),
        Setting("... ranked by the class-relevant feature distance", "hpd.search",
                "distance", "Eq. 6, Table 15"),
        Setting("the final set by real performance", "hpd.select", "accuracy", "line 47",
                code="last"),
        Setting("the CAM network: a ResNet-18 (ImageNet-1k in the paper; the released "
                "code computes no distance)",
                "hpd.distance_net", "ResNet18", "line 313",
                deviation="trained here on the run's data, as no ImageNet weights are "
                "offline; torchvision's convert with python -m dd_jax.models.imagenet"),
        Setting("initialisation by averaged noise (IPC 1)", "glad.init", "average",
                "Sec. 3.4"),
    ))

SETTINGS = (AST, HPD)

TABLES = (SEQMATCH, PAD, PAD_DC, PAD_DM)


def _show(value) -> str:
  if value is None:
    return "-"
  if isinstance(value, tuple):
    return "{" + ", ".join(_show(v) for v in value) + "}"
  if isinstance(value, float):
    return f"{value:g}"
  return str(value)


def render(table: PaperTable) -> str:
  """The markdown block of one table: per setting, every field's paper value, the
  official code's where it differs, and the variant giving it."""
  lines = [f"Generated from `configs/papers.py` ({table.source}); the configs are checked "
           "against it by tests/test_paper_settings.py.", "",
           "| setting | " + " | ".join(f"`{f}`" for f in table.fields) + " |",
           "|---|" + "---|" * len(table.fields)]
  for (dataset, ipc), row in table.rows.items():
    where = (f"not configured: {table.missing[(dataset, ipc)]}"
             if (dataset, ipc) in table.missing else
             "`" + table.config.format(dataset=dataset) + f":ipc={ipc}"
             + (f",{table.variant}" if table.variant else "") + "`")
    lines.append(f"| {dataset} IPC {ipc} ({where}) | "
                 + " | ".join(_show(row[f]) for f in table.fields) + " |")
    code = (_pad_code() if table is PAD else table.code).get((dataset, ipc))
    if code:
      cells = [_show(code[f]) if f in code else "" for f in table.fields]
      extra = ", ".join(f"`{k}` {_show(v)}" for k, v in code.items() if k not in table.fields)
      lines.append(f"| ... official code, `{table.option}`{': ' + extra if extra else ''} | "
                   + " | ".join(cells) + " |")
  if table.code_source:
    lines += ["", f"Official code: {table.code_source}."]
  return "\n".join(lines)


def render_settings(table: SettingsTable) -> str:
  """Each setting: the paper's value, the official code's, ours read from the config."""
  ours, code = table.load(), table.load(code=True)
  lines = [f"Generated from `configs/papers.py` ({table.source}); \"ours\" is "
           f"`{table.config}` and `{table.option}` its official-code variant, checked by "
           "tests/test_paper_settings.py.", "",
           "| setting | field | paper | official code | ours | `" + table.option + "` |",
           "|---|---|---|---|---|---|"]
  for st in table.settings:
    note = f" ({st.deviation})" if st.deviation else ""
    lines.append(f"| {st.what} ({st.source}) | `{st.field}` | {_show(st.paper)} | "
                 f"{_show(st.code) if st.code is not None else 'same'} | "
                 f"{_show(field_value(ours, st.field))}{note} | "
                 f"{_show(field_value(code, st.field))} |")
  return "\n".join(lines)


def _block(name: str) -> tuple[str, str]:
  return f"<!-- generated: papers.{name} -->", f"<!-- end: papers.{name} -->"


def rewrite(text: str) -> str:
  for table in TABLES + SETTINGS:
    start, end = _block(table.name)
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
      raise SystemExit(f"{METHODS_MD} has no {start} ... {end} block for {table.name}")
    body = render(table) if isinstance(table, PaperTable) else render_settings(table)
    text = pattern.sub(lambda _, body=body: f"{start}\n{body}\n{end}", text)
  return text


def main(argv: list[str]) -> int:
  current = open(METHODS_MD).read()
  text = rewrite(current)
  if "--check" in argv:
    if text != current:
      print(f"{METHODS_MD} is out of date: run python -m configs.papers")
      return 1
    return 0
  with open(METHODS_MD + ".tmp", "w") as f:
    f.write(text)
  os.replace(METHODS_MD + ".tmp", METHODS_MD)
  print(f"wrote {METHODS_MD}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
