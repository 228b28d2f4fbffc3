"""benchmarks/parity_cores.py spreads an official_parity study over the cores: its jobs
wait for what they need, finished ones are kept across restarts, a failure stops what
depends on it, and the evaluation parts merge into the study's one results file."""
import json
import os
import sys

import pytest

from benchmarks import parity_cores

STUDY = ["--method=pad", "--official=/tmp/PAD", "--root=/tmp/study", "--experts=/tmp/ex",
         "--ipc=10", "--seeds=0,2", "--eval-epochs=150", "--batch-train=128"]


def test_a_study_becomes_experts_export_seeds_then_evaluations():
  jobs = parity_cores.jobs(STUDY)
  names = list(jobs)
  assert names[:4] == ["experts", "export", "seed0", "seed2"]
  experts, _ = jobs["experts"]
  assert experts[1:3] == ["-m", "dd_jax.experts"]
  # the study's config and expert flags only: the experts command refuses distill fields
  assert "--config.expert.dir=/tmp/ex" in experts and "--config.expert.sam=none" in experts
  assert not any(f.startswith("--config.distill.") for f in experts)
  assert jobs["export"][1] == ["experts"] and "--src=/tmp/ex" in jobs["export"][0]
  seed, needs = jobs["seed2"]
  assert needs == ["export"] and seed[-2:] == ["--seeds=2", "--distill-only"]
  evals = [n for n in names if n.startswith("eval_")]
  assert len(evals) == 2 * 2 * 2    # seeds x sides x protocols
  cmd, needs = jobs["eval_official_2_ours"]
  assert needs == ["seed2"]
  assert {"--arms=ours", "--epochs=150", "--batch=128", "--official=/tmp/PAD",
          "--sets=/tmp/study/official_2/synset.npz",
          "--out=/tmp/study/eval_parts/official_2_ours"} <= set(cmd)


def _write(path):
  return [sys.executable, "-c", f"open({str(path)!r}, 'a').write('x')"]


def test_jobs_run_after_what_they_need_and_resume(tmp_path):
  order = tmp_path / "order"
  todo = {"b": ([sys.executable, "-c", f"open({str(order)!r}, 'a').write('b')"], ["a"]),
          "a": ([sys.executable, "-c", f"open({str(order)!r}, 'a').write('a')"], []),
          "c": ([sys.executable, "-c", f"open({str(order)!r}, 'a').write('c')"], ["b"])}
  folder = str(tmp_path / "jobs")
  assert parity_cores.run_jobs(todo, [0, 0], folder) == []
  assert order.read_text() == "abc"
  assert "done after" in (tmp_path / "jobs" / "status").read_text()
  assert parity_cores.run_jobs(todo, [0], folder) == []   # all kept: nothing runs again
  assert order.read_text() == "abc"


def test_a_failed_job_stops_what_needs_it_and_is_retried_next_time(tmp_path):
  ran = tmp_path / "ran"
  todo = {"a": ([sys.executable, "-c", "raise SystemExit(3)"], []),
          "b": (_write(ran), ["a"]),
          "c": ([sys.executable, "-c", f"open({str(tmp_path / 'c')!r}, 'w')"], [])}
  folder = str(tmp_path / "jobs")
  assert parity_cores.run_jobs(todo, [0], folder) == ["a"]
  assert not ran.exists() and (tmp_path / "c").exists()   # independent work still ran
  assert "a FAILED (3)" in (tmp_path / "jobs" / "status").read_text()
  todo["a"] = ([sys.executable, "-c", "pass"], [])
  assert parity_cores.run_jobs(todo, [0], folder) == [] and ran.exists()


def test_evaluation_parts_merge_into_the_studys_results(tmp_path):
  key = "ours/nets=5/epochs=150/batch=128"
  for part, s, arm in (("ours_0_ours", "/s0.npz", "ours"), ("ours_0_official", "/s0.npz",
                                                          "official")):
    os.makedirs(tmp_path / "eval_parts" / part)
    with open(tmp_path / "eval_parts" / part / "results.json", "w") as f:
      json.dump({s: {key.replace("ours", arm, 1): [0.5]}}, f)
  os.makedirs(tmp_path / "eval")
  with open(tmp_path / "eval" / "results.json", "w") as f:   # an earlier entry is kept
    json.dump({"/s1.npz": {key: [0.7]}}, f)
  parity_cores.merge_evaluations(str(tmp_path))
  with open(tmp_path / "eval" / "results.json") as f:
    merged = json.load(f)
  assert merged == {"/s1.npz": {key: [0.7]},
                    "/s0.npz": {key: [0.5], key.replace("ours", "official", 1): [0.5]}}


def test_a_distill_only_record_prints_each_sides_step_time():
  from benchmarks import official_parity
  args = vars(official_parity.parser().parse_args(["--ipc=10", "--seeds=0,1",
                                                   "--batch-syn=20", "--iterations=30"]))
  runs = {f"{side}_{s}": {"seconds": 100.0 + s, "peak_mib": 1000.0 + 10 * s,
                          "step_s": step + s}
          for side, step in (("ours", 2.0), ("official", 1.0)) for s in (0, 1)}
  text = official_parity.table({"args": args, "machine": "a quiet machine", "seeds": [0, 1],
                                "runs": runs})
  assert text.splitlines()[0].startswith("MTT outer steps, Fashion-MNIST IPC 10, 30 steps")
  assert "| ours | 2.50 | 100 | 1010 |" in text and "| official | 1.50 | 100 | 1010 |" in text


def _study(seeds, nets, ours_acc, **changed):
  from benchmarks import official_parity
  args = vars(official_parity.parser().parse_args(
      ["--ipc=1", f"--seeds={','.join(map(str, seeds))}", f"--nets={nets}",
       f"--root=/tmp/study{nets}"]))
  runs = {f"{side}_{s}": {"seconds": 100.0, "peak_mib": 1000.0, "step_s": 1.0,
                          "eval": {"ours": [acc] * nets, "official": [acc] * nets}}
          for side, acc in (("ours", ours_acc), ("official", 0.70)) for s in seeds}
  return {"args": {**args, **changed}, "machine": "m", "seeds": list(seeds), "runs": runs}


def test_studies_of_other_seeds_pool_into_one_table():
  from benchmarks import official_parity
  record = official_parity.pooled([_study((0, 1), 5, 0.68), _study((3, 4), 10, 0.70)])
  assert record["seeds"] == [0, 1, 3, 4] and len(record["runs"]) == 8
  text = official_parity.table(record)
  assert "IPC 1, 4 seeds" in text and "evaluated with 5+10 nets" in text
  assert "| ours | 69.00 ± 1.00 | 69.00 ± 1.00 |" in text
  assert "- ours protocol: ours - official -1.00 (bound 1.00): pass" in text
  # 10 nets at 68 and 20 at 70 against 30 at 70
  assert "- ours protocol, pooled over the 30 nets a side: ours - official -0.67 ± 0.18" in text


def test_pooling_refuses_studies_that_differ_in_more_than_seeds(monkeypatch):
  from benchmarks import official_parity
  with pytest.raises(SystemExit, match=r"differ in lr_img \(1000.0, 100.0\)"):
    official_parity.pooled([_study((0,), 5, 0.7), _study((1,), 5, 0.7, lr_img=100.0)])
  with pytest.raises(SystemExit, match="a seed appears in two studies"):
    official_parity.pooled([_study((0,), 5, 0.7), _study((0,), 10, 0.7)])
