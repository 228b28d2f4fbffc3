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

TABLES = (SEQMATCH,)


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
             "`" + table.config.format(dataset=dataset) + f":ipc={ipc}`")
    lines.append(f"| {dataset} IPC {ipc} ({where}) | "
                 + " | ".join(_show(row[f]) for f in table.fields) + " |")
    code = table.code.get((dataset, ipc))
    if code:
      cells = [_show(code[f]) if f in code else "" for f in table.fields]
      extra = ", ".join(f"`{k}` {_show(v)}" for k, v in code.items() if k not in table.fields)
      lines.append(f"| ... official code, `{table.option}`{': ' + extra if extra else ''} | "
                   + " | ".join(cells) + " |")
  if table.code_source:
    lines += ["", f"Official code: {table.code_source}."]
  return "\n".join(lines)


def _block(name: str) -> tuple[str, str]:
  return f"<!-- generated: papers.{name} -->", f"<!-- end: papers.{name} -->"


def rewrite(text: str) -> str:
  for table in TABLES:
    start, end = _block(table.name)
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
      raise SystemExit(f"{METHODS_MD} has no {start} ... {end} block for {table.name}")
    text = pattern.sub(lambda _: f"{start}\n{render(table)}\n{end}", text)
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
