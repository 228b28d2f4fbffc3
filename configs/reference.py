"""The config reference (docs/config.md), generated from the config files.

    python -m configs.reference            # rewrites docs/config.md
    python -m configs.reference --check    # exit 1 when docs/config.md is out of date

Every field's default is read from `defaults.base_config()`, its meaning from the comments
beside it in configs/defaults.py (its functions in file order): the comment on a field's
line (continued on the lines below at the same column), or a comment block above a group
of fields that names the field. A block above a section's `ConfigDict()` describes the
section; a function that adds fields to a section made earlier (a method's own fields)
continues it. Each experiment file then contributes its docstring (command, variants)
and a table of the fields its IPC settings change from the defaults.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import os
import re
import sys

from configs import defaults
from dd_jax import cli

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "docs", "config.md")
DEFAULTS = os.path.join(HERE, "defaults.py")
_FIELD = re.compile(r"^  config\.([\w.]+) = (.*?)(?:\s+#\s?(.*))?$")
_COMMENT = re.compile(r"^(\s*)#\s?(.*)$")
# base_config's own lines: the config made, the field functions applied, returned
_PLUMBING = re.compile(r"^\s+(config = ml_collections\.ConfigDict\(\)|return config"
                       r"|for \w+ in SECTIONS:|\w+\(config\))$")


@dataclasses.dataclass
class Field:
  name: str            # dotted path, e.g. "distill.syn_steps"
  comment: str = ""    # the comment beside it
  group: int = -1      # index of the comment block above its group (-1: none)


@dataclasses.dataclass
class Section:
  name: str
  about: str = ""
  fields: list[Field] = dataclasses.field(default_factory=list)
  groups: list[str] = dataclasses.field(default_factory=list)


def _bodies(source: str) -> list[list[str]]:
  """The lines of each top-level function's body in `source`, in file order: from the
  end of its docstring (or the comments above its first statement) to its last line
  (with the indented comment lines after it)."""
  lines = source.splitlines()
  out = []
  for node in ast.parse(source).body:
    if not isinstance(node, ast.FunctionDef):
      continue
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
      start = first.end_lineno                    # after the docstring
    else:
      start = first.lineno - 1
      while start > node.lineno and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    end = node.end_lineno
    while end < len(lines) and re.match(r"^\s+#", lines[end]):   # a comment continued
      end += 1
    out.append(lines[start:end])
  return out


def parse(source: str) -> list[Section]:
  """The sections of the defaults in source order, each field with its comments, from
  the `config.<section>.<field> = <value>` lines of every function in `source` (the
  field functions of configs/defaults.py, or one function holding them all)."""
  sections = [Section("")]           # top-level fields (seed)
  for body in _bodies(source):
    _parse_body(body, sections)
  for section in sections:
    _end_groups(section)
  return sections


def _parse_body(body: list[str], sections: list[Section]) -> None:
  """Adds one function's fields to `sections`: a `ConfigDict()` line opens a section, a
  field of a section opened earlier continues that section."""
  block: list[str] = []              # the comment block being read
  group = -1                         # the group the fields below belong to
  last: Field | None = None
  last_column = -1                   # column of the last field's comment
  for line in body:
    if _PLUMBING.match(line):
      continue
    comment = _COMMENT.match(line)
    if comment and last is not None and len(comment.group(1)) == last_column:
      last.comment += " " + comment.group(2).strip()   # a continued field comment
      continue
    last, last_column = None, -1
    if comment:
      block.append(comment.group(2).strip())
      continue
    if not line.strip():             # a blank line ends a group
      block, group = [], -1
      continue
    match = _FIELD.match(line)
    if not match:
      raise ValueError(f"configs/defaults.py: cannot read the line {line.strip()!r}")
    name, value, text = match.groups()
    if value == "ml_collections.ConfigDict()" and "." not in name:
      # a section (nested ones are documented as fields)
      sections.append(Section(name, " ".join(block + [text or ""]).strip()))
      block, group = [], -1
      continue
    section = next(s for s in sections if s.name == name.partition(".")[0] * ("." in name))
    if block:
      section.groups.append(" ".join(block))
      group, block = len(section.groups) - 1, []
    last = Field(name, (text or "").strip(), group)
    last_column = line.index("#") if text else -1
    section.fields.append(last)


def _names(field: Field, block: str) -> bool:
  return bool(re.search(rf"\b{field.name.rsplit('.', 1)[-1]}\b", block))


def _end_groups(section: Section) -> None:
  """A comment block covers the fields below it up to the last one it names (all of
  them when it names none); a block about one field is that field's meaning."""
  for index, block in enumerate(section.groups):
    members = [f for f in section.fields if f.group == index]
    named = [i for i, f in enumerate(members) if _names(f, block)]
    for f in members[named[-1] + 1:] if named else []:
      f.group = -1
    if named == [0] and not members[0].comment:
      leaf = members[0].name.rsplit(".", 1)[-1]
      members[0].comment, members[0].group = block.removeprefix(f"{leaf}: "), -1


def undocumented(sections: list[Section]) -> list[str]:
  """Fields with neither a comment of their own nor a group comment naming them."""
  missing = []
  for section in sections:
    for f in section.fields:
      if not f.comment and not (f.group >= 0 and _names(f, section.groups[f.group])):
        missing.append(f.name)
  return missing


def _value(config, name: str):
  for part in name.split("."):
    config = config[part]
  return config


def _show(value) -> str:
  if isinstance(value, str):
    return f'`"{value}"`'
  if isinstance(value, float) and value >= 1e4 and value == int(value):
    return f"`{int(value):_}.0`"
  if isinstance(value, int) and not isinstance(value, bool) and value >= 1e4:
    return f"`{value:_}`"
  if hasattr(value, "to_dict"):
    return "(section)"
  return f"`{value!r}`"


def _cell(text: str) -> str:
  return text.replace("|", "\\|")


def _leaves(config, prefix: str = "") -> dict[str, object]:
  out = {}
  for key, value in config.items():
    name = f"{prefix}{key}"
    if hasattr(value, "items"):
      out.update(_leaves(value, name + "."))
    else:
      out[name] = value
  return out


def experiment_files() -> list[str]:
  return sorted(n[:-3] for n in os.listdir(HERE)
                if n.endswith(".py") and n[:-3] not in cli.NOT_EXPERIMENTS)


def _experiment(name: str, defaults: dict[str, object]) -> list[str]:
  module = importlib.import_module(f"configs.{name}")
  lines = [f"### `configs/{name}.py`", ""]
  doc = (module.__doc__ or "").strip()
  lines += ["```", doc, "```", ""] if doc else []
  ipcs = sorted(getattr(module, "PER_IPC", {})) or [None]
  variants = {ipc: _leaves(module.get_config(None if ipc is None else f"ipc={ipc}"))
              for ipc in ipcs}
  changed = [k for k in defaults if any(v[k] != defaults[k] for v in variants.values())]
  if not changed:
    return lines + ["Every field at its default.", ""]
  head = ["field", "default"] + [("as given" if ipc is None else f"`ipc={ipc}`")
                                 for ipc in ipcs]
  lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for key in changed:
    row = [f"`{key}`", _show(defaults[key])] + [
        _show(v[key]) if v[key] != defaults[key] else "" for v in variants.values()]
    lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
  return lines + [""]


def render() -> str:
  with open(DEFAULTS) as f:
    sections = parse(f.read())
  config = defaults.base_config()
  lines = [
      "# Config reference",
      "",
      "<!-- Generated by `python -m configs.reference` from configs/defaults.py and the",
      "experiment files; edit those, not this page (tests/test_config_reference.py",
      "checks it is current). -->",
      "",
      "Every run takes one `ml_collections` config: `--config=configs/<dataset>_<method>.py"
      ":<variants>` picks an experiment file and its variants (`ipc=10`, `runlocal`, the "
      "method's switches), and `--config.<section>.<field>=<value>` sets any single field "
      "below. Invalid values are refused before anything runs, naming the field.",
      "",
      "- [Fields](#fields): every field, its default and what it does.",
      "- [Experiment files](#experiment-files): what each `configs/*.py` changes.",
      "",
      "## Fields",
      "",
  ]
  for section in sections:
    lines += [f"### `{section.name or '(top level)'}`", ""]
    if section.about:
      lines += [section.about, ""]
    group = None
    for f in section.fields:
      if f.group != group or group is None:
        if group is not None:
          lines.append("")
        if f.group >= 0:
          lines += [f"*{section.groups[f.group]}*", ""]
        lines += ["| field | default | meaning |", "|---|---|---|"]
        group = f.group
      lines.append(f"| `{f.name}` | {_cell(_show(_value(config, f.name)))} | "
                   f"{_cell(f.comment or 'see above')} |")
    lines.append("")
  lines += ["## Experiment files", ""]
  default_values = _leaves(config)
  for name in experiment_files():
    lines += _experiment(name, default_values)
  return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
  with open(DEFAULTS) as f:
    missing = undocumented(parse(f.read()))
  if missing:
    print("configs/defaults.py: no comment says what these fields do: " + ", ".join(missing)
          + "; add one beside each (or name it in its group's comment block)")
    return 1
  text = render()
  if "--check" in argv:
    current = open(OUT).read() if os.path.exists(OUT) else ""
    if current != text:
      print(f"{OUT} is out of date: run python -m configs.reference")
      return 1
    return 0
  os.makedirs(os.path.dirname(OUT), exist_ok=True)
  tmp = f"{OUT}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, OUT)
  print(f"wrote {OUT}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
