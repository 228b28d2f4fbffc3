"""Each config's per-IPC values equal its paper's table (configs/papers.py, transcribed
once from shared/papers with the table named), the `code=1` variants the official code's,
and docs/methods.md's generated tables are current."""
import importlib

import pytest

from configs import papers
from dd_jax.distill import seqmatch

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "tiny_imagenet": 200}


def _per_subset(value, k):
  return value[k] if isinstance(value, tuple) else value


def _seqmatch_values(config) -> dict:
  """What each subset of a SeqMatch config runs with, as Table 4's columns."""
  sizes = tuple(config.seqmatch.subsets)
  num_classes = NUM_CLASSES[config.data.name]
  stages = [seqmatch.stage_config(config, k, num_classes).distill for k in range(len(sizes))]
  out = {"K": len(sizes)}
  for field, distill_field in (("max_start_epochs", "max_start_epoch"),
                               ("syn_steps", "syn_steps"), ("expert_epochs", "expert_epochs"),
                               ("lr_img", "lr_img"), ("lr_lr", "lr_lr"),
                               ("lr_teacher", "lr_teacher"), ("batch_syn", "batch_syn")):
    out[field] = tuple(s[distill_field] for s in stages)
  # "-" in the table: one batch of the whole subset, the official default
  out["whole_subset"] = tuple(num_classes * size for size in sizes)
  return out


def _expect(row: dict, k: int, field: str, got: dict):
  want = _per_subset(row[field], k)
  return got["whole_subset"][k] if field == "batch_syn" and want is None else want


SEQ_ROWS = [key for key in papers.SEQMATCH.rows if key not in papers.SEQMATCH.missing]


@pytest.mark.parametrize("dataset,ipc", SEQ_ROWS)
def test_seqmatch_configs_are_table_4(dataset, ipc):
  row = papers.SEQMATCH.rows[(dataset, ipc)]
  module = importlib.import_module(f"configs.{dataset}_seqmatch")
  config = module.get_config(f"ipc={ipc}")
  got = _seqmatch_values(config)
  assert got["K"] == row["K"]
  assert config.seqmatch.experts == "warm_start"   # the windows are read on those
  for field in papers.SEQMATCH.fields[1:]:
    want = tuple(_expect(row, k, field, got) for k in range(row["K"]))
    assert got[field] == pytest.approx(want), (dataset, ipc, field)


@pytest.mark.parametrize("dataset,ipc", list(papers.SEQMATCH.code))
def test_seqmatch_code_variants_are_the_official_scripts(dataset, ipc):
  code = papers.SEQMATCH.code[(dataset, ipc)]
  module = importlib.import_module(f"configs.{dataset}_seqmatch")
  config = module.get_config(f"ipc={ipc},code=1")
  got = _seqmatch_values(config)
  for field, want in code.items():
    if field == "zca":
      assert config.data.zca == want
    else:
      assert got[field] == tuple(_per_subset(want, k) for k in range(got["K"]))
  paper = module.get_config(f"ipc={ipc}")
  assert _seqmatch_values(paper) != got or paper.data.zca != config.data.zca


def test_missing_settings_are_named_and_the_generated_docs_are_current():
  assert all(key in papers.SEQMATCH.rows for key in papers.SEQMATCH.missing)
  assert papers.main(["--check"]) == 0, "run python -m configs.papers"
