"""docs/config.md is generated from the config files and current; docs/methods.md names
only fields and variants that exist."""
import os
import re

import pytest

from configs import defaults, reference
from tests.conftest import ROOT

DEFAULTS = os.path.join(ROOT, "configs", "defaults.py")


def _parse():
  with open(DEFAULTS) as f:
    return reference.parse(f.read())


def test_every_field_of_the_defaults_is_read_with_a_meaning():
  sections = _parse()
  parsed = {f.name for s in sections for f in s.fields}
  leaves = set(reference._leaves(defaults.base_config()))  # pylint: disable=protected-access
  # Nested sections (expert.schedule) are documented as fields, their leaves too.
  assert leaves <= parsed and parsed - leaves == {"expert.schedule"}
  assert reference.undocumented(sections) == []


def test_comments_are_read_as_the_source_lays_them_out():
  source = '''def base_config():
  config = ml_collections.ConfigDict()
  config.seed = 0                      # the seed

  # About the section.
  config.a = ml_collections.ConfigDict()
  config.a.x = 1                       # first line
                                       # continued
  # A group about y and z.
  config.a.y = 2
  config.a.z = 3
  config.a.w = 4
  # w2: a block about one field.
  config.a.w2 = 5
  return config
'''
  top, a = reference.parse(source)
  assert [f.comment for f in top.fields] == ["the seed"] and a.about == "About the section."
  x, y, z, w, w2 = a.fields
  assert x.comment == "first line continued"
  assert a.groups[y.group] == "A group about y and z." and z.group == y.group
  assert w.group == -1 and not w.comment                # after the last field it names
  assert (w2.comment, w2.group) == ("a block about one field.", -1)
  assert reference.undocumented([top, a]) == ["a.w"]


def test_the_committed_reference_is_current():
  with open(reference.OUT) as f:
    assert f.read() == reference.render(), "run python -m configs.reference"


def test_the_reference_shows_each_experiment_files_changes():
  text = reference.render()
  for name in reference.experiment_files():
    assert f"### `configs/{name}.py`" in text
  # cifar10_mtt at IPC 10 uses 30 student steps (MTT's command), the default is 20.
  section = text.split("### `configs/cifar10_mtt.py`")[1].split("### ")[0]
  row = next(line for line in section.splitlines() if line.startswith("| `distill.syn_steps`"))
  cells = [c.strip() for c in row.strip("|").split("|")]
  header = next(line for line in section.splitlines() if line.startswith("| field"))
  columns = [c.strip() for c in header.strip("|").split("|")]
  from configs import cifar10_mtt
  assert cells[1] == "`20`"
  assert cells[columns.index("`ipc=10`")] == f"`{cifar10_mtt.get_config('ipc=10').distill.syn_steps}`"


@pytest.mark.parametrize("page", ["docs/methods.md", "README.md"])
def test_the_docs_name_only_fields_that_exist(page):
  with open(os.path.join(ROOT, page)) as f:
    text = f.read()
  leaves = set(reference._leaves(defaults.base_config()))  # pylint: disable=protected-access
  sections = {name.split(".")[0] for name in leaves}
  named = {m for m in re.findall(r"`([a-z_]+\.[a-z_.]+)", text)
           if m.split(".")[0] in sections and not m.endswith((".py", ".md", ".npz", ".json"))}
  unknown = {m for m in named if m not in leaves and not m.endswith(".")
             and not any(leaf.startswith(m + ".") for leaf in leaves)}
  assert named and not unknown
