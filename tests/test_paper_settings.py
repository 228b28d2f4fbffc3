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


def _pad_values(config) -> dict:
  """A PAD config as Table 10's columns (a fixed window reads T = T+, interval '-')."""
  d = config.distill
  current = d.current_max_start_epoch or d.max_start_epoch
  fixed = not d.expansion_end or current == d.max_start_epoch
  return {"param_mask_ratio": d.param_mask_ratio, "syn_steps": d.syn_steps,
          "expert_epochs": d.expert_epochs, "min_start_epoch": d.min_start_epoch,
          "current_max_start_epoch": current, "max_start_epoch": d.max_start_epoch,
          "interval": None if fixed else d.expansion_end // (d.max_start_epoch - current),
          "batch_syn": d.batch_syn, "lr_y": d.lr_y, "lr_img": d.lr_img}


@pytest.mark.parametrize("dataset,ipc", list(papers.PAD.rows))
def test_pad_configs_are_table_10_and_code_1_the_official_yaml(dataset, ipc):
  module = importlib.import_module(f"configs.{dataset}_pad")
  config = module.get_config(f"ipc={ipc}")
  assert _pad_values(config) == papers.PAD.rows[(dataset, ipc)]
  schedule = config.expert.schedule
  assert (schedule.initial_ratio, schedule.addition_end) == tuple(
      papers.PAD_FIEX[dataset].values())
  # FIEX removes the easiest 10% once (pad.txt lines 100, 458)
  assert tuple(schedule.removal_fractions) == (0.1,) and len(schedule.removal_epochs) == 1
  official = module.get_config(f"ipc={ipc},code=1")
  assert all(official.distill[k] == v for k, v in module.CODE[ipc].items())
  assert tuple(official.expert.schedule.removal_fractions) == (0.1, 0.2)
  assert (official.distill.param_mask != "none") == (official.distill.param_mask_ratio > 0)


def test_pad_code_1_is_refused_where_no_official_values_are_recorded():
  from configs import fashion_mnist_pad
  with pytest.raises(ValueError, match="code=1"):
    fashion_mnist_pad.get_config("ipc=10,code=1")


@pytest.mark.parametrize("method", ["dc", "dm"])
@pytest.mark.parametrize("dataset", ["cifar10", "fashion_mnist"])
def test_pad_on_dc_dm_prunes_statically_by_ipc_as_tables_6_and_7(method, dataset):
  table = papers.PAD_MATCHING[method]
  module = importlib.import_module(f"configs.{dataset}_{method}")
  for (_, ipc), row in table.rows.items():
    variant = f"ipc={ipc},fiex=1" + (",fiem=1" if row["param_mask_ratio"] else "")
    if ipc not in module.PER_IPC:
      continue
    config = module.get_config(variant)
    e, d = config.expert, config.distill
    assert (e.data_schedule, e.schedule.prune, e.schedule.prune_fraction) == (
        "prune", row["prune"], row["prune_fraction"]), (method, ipc)
    if row["param_mask_ratio"]:
      assert (d.param_mask, d.param_mask_ratio) == ("depth", row["param_mask_ratio"])
  # small IPC: the hard samples go; large IPC: the easy ones (pad.txt lines 386, 390)
  assert table.rows[("cifar10", 1)]["prune"] == "hard"
  assert table.rows[("cifar10", 500)]["prune"] == "easy"
  # IPC 50 is in neither table, IPC 1 not in Table 7: refused, naming the fields to set
  with pytest.raises(ValueError, match=r"Table 6 .*ipc=50.*expert\.schedule\.prune"):
    module.get_config("ipc=50,fiex=1")
  with pytest.raises(ValueError, match=r"Table 7 .*ipc=1.*distill\.param_mask_ratio"):
    module.get_config("ipc=1,fiem=1")


@pytest.mark.parametrize("table", papers.SETTINGS, ids=lambda t: t.name)
def test_global_settings_are_the_papers_and_code_1_the_official_codes(table):
  ours, code = table.load(), table.load(code=True)
  for st in table.settings:
    got = papers.field_value(ours, st.field)
    if not st.deviation:
      assert got == pytest.approx(st.paper), (table.name, st.field)
    want = st.code if st.code is not None else (got if st.deviation else st.paper)
    assert papers.field_value(code, st.field) == pytest.approx(want), (table.name, st.field)
