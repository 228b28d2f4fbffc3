"""benchmarks/fashion_mnist.py makes issue 28's rows from the studies' eval_results.json
and timings, and writes the README table between its markers only."""
import json
import os

import pytest

from benchmarks import fashion_mnist


def _study(root, name, ipc, seeds_accs, timings, labels="hard", flags=(), ablation=""):
  study = os.path.join(root, f"{name}_ipc{ipc}")
  os.makedirs(study, exist_ok=True)
  with open(os.path.join(study, "study.json"), "w") as f:
    json.dump({"method": name, "ipc": ipc, "labels": labels,
               "config": f"configs/fashion_mnist_mtt.py:ipc={ipc}", "flags": list(flags),
               "ablation": ablation}, f)
  for seed, accs in seeds_accs.items():
    ev = os.path.join(study, f"seed{seed}", "eval")
    os.makedirs(ev)
    with open(os.path.join(ev, "eval_results.json"), "w") as f:
      json.dump({"results": {"ConvNet": {"accuracies": accs}}}, f)
    for phase in ("distill", "eval") if name != "random" else ("eval",):
      timings[f"{name}_ipc{ipc}/seed{seed}/{phase}"] = {
          "seconds": 600.0 * (seed + 1) if phase == "distill" else 60.0, "commit": "abc"}


@pytest.fixture
def root(tmp_path):
  timings = {"experts": {"seconds": 3000.0, "commit": "abc"}}
  _study(tmp_path, "mtt", 10, {0: [0.80, 0.82], 1: [0.84, 0.86]}, timings,
         flags=["--config.distill.iterations=9"])
  _study(tmp_path, "random", 10, {0: [0.70, 0.72], 1: [0.74, 0.76]}, timings)
  _study(tmp_path, "mtt", 1, {0: [0.5, 0.6]}, timings)
  os.makedirs(tmp_path / "mtt_ipc1" / "seed1")   # a seed not evaluated yet: left out
  with open(tmp_path / "timings.json", "w") as f:
    json.dump(timings, f)
  with open(tmp_path / "experts.json", "w") as f:
    json.dump({"config": "configs/fashion_mnist_mtt.py",
               "flags": ["--config.expert.num_experts=6"]}, f)
  return str(tmp_path)


def test_rows_pool_every_seed_and_net_and_time_each_phase(root):
  rows = fashion_mnist.rows([root])
  assert [(r["ipc"], r["method"]) for r in rows] == [(1, "mtt"), (10, "random"), (10, "mtt")]
  mtt = rows[2]
  assert mtt["seeds"] == [0, 1] and mtt["nets"] == 4 and mtt["seed_means"] == [81.0, 85.0]
  assert mtt["acc_mean"] == pytest.approx(83.0)
  assert mtt["acc_std"] == pytest.approx((sum((a - 83) ** 2 for a in (80, 82, 84, 86)) / 4) ** 0.5,
                                         abs=0.01)
  assert (mtt["expert_seconds"], mtt["distill_seconds"], mtt["eval_seconds"]) == (3000, 900, 60)
  assert mtt["command"] == ("python -m dd_jax.main --config=configs/fashion_mnist_mtt.py:ipc=10 "
                            "--config.expert.num_experts=6 --config.distill.iterations=9")
  assert rows[1]["expert_seconds"] == 0 and rows[1]["distill_seconds"] == 0
  assert rows[0]["seeds"] == [0] and rows[0]["labels"] == "hard"


def test_the_readme_table_is_written_between_its_markers_only(root, tmp_path, monkeypatch):
  readme = tmp_path / "README.md"
  readme.write_text(f"before\n{fashion_mnist.BEGIN}\nold\n{fashion_mnist.END}\nafter\n")
  monkeypatch.setattr(fashion_mnist, "README", str(readme))
  monkeypatch.setattr(fashion_mnist, "RESULTS", str(tmp_path / "rows.json"))
  rows = fashion_mnist.rows([root])
  fashion_mnist.write(rows)
  text = readme.read_text()
  assert text.startswith("before\n" + fashion_mnist.BEGIN) and text.endswith(
      fashion_mnist.END + "\nafter\n") and "old" not in text
  line = next(line for line in text.splitlines() if line.startswith("| 10 | mtt"))
  assert "83.00 ± 2.24 (2 x 2)" in line and "73.00 ± 2.24" in line   # beside its random row
  assert line.endswith("| 50 | 15 | 1 |")                          # minutes per phase
  random = next(line for line in text.splitlines() if line.startswith("| 10 | random"))
  assert "| random real subset | hard | 73.00 ± 2.24 (2 x 2) | - |" in random   # own row
  assert "84.6 DSA (hard)" in random and random.endswith("| - | - | 1 |")
  assert json.loads((tmp_path / "rows.json").read_text()) == rows
  readme.write_text("no markers\n")
  with pytest.raises(SystemExit, match="markers"):
    fashion_mnist.write(rows)


def test_ablation_arms_go_to_their_own_table_against_their_base(root):
  timings = json.load(open(os.path.join(root, "timings.json")))
  it = "--config.distill.iterations=600"
  _study(root, "p-base", 1, {0: [0.70, 0.72]}, timings, flags=[it], ablation="p-base")
  _study(root, "p-lr", 1, {0: [0.74, 0.76]}, timings,
         flags=[it, "--config.distill.lr_img=100"], ablation="p-base")
  with open(os.path.join(root, "timings.json"), "w") as f:
    json.dump(timings, f)
  rows = fashion_mnist.rows([root])
  main = fashion_mnist.markdown(rows)
  assert "p-base" not in main and "p-lr" not in main and "| 1 | mtt |" in main
  lines = fashion_mnist.ablation_markdown(rows).splitlines()[2:]
  assert lines[0].startswith("| 1 | p-base | (the base) | 71.00 ± 1.00 (1 x 2) |  |")
  assert lines[1].startswith("| 1 | p-lr | `--config.distill.lr_img=100` | 75.00 ± 1.00 "
                             "(1 x 2) | +4.00 |")
