"""benchmarks/readme_command.py times the README's own run command and reads the plan
and the phases from the run's log lines."""
from benchmarks import readme_command

LOG = """\
I1207 13:06:47.233154 1 cli.py:228] JAX 0.10.2, devices: [CpuDevice(id=0)]
I1207 13:06:59.622645 1 estimate.py:211] plan:
  experts: 2 to train x 2 epochs (~6s)
  distillation: 4 outer steps of 4 (5 inner steps of 10 images each; ~1m14s)
  evaluations: 3 x 2 nets x 4 epochs (~6s)
  estimated wall time ~1h02m (one SGD step of ConvNet measured now: 8 ms at 10)
I1207 13:07:04.094752 1 train.py:345] expert 1/2 epoch 1/2: loss 2.3112 (2.6s), ETA 13s
I1207 13:07:07.353702 1 train.py:345] expert 2/2 epoch 2/2: loss 2.1677 (0.4s), ETA 0s
I1207 13:07:25.071656 1 protocol.py:308] step 0 eval ConvNet: 22.20 +- 3.20% (2 nets, 4 epochs, 2s)
I1207 13:07:25.456910 1 loop.py:344] step 1/4: loss 0.5569, syn_lr 0.00968, ETA 1s
I1207 13:07:26.652080 1 loop.py:344] step 4/4: loss 0.4952, syn_lr 0.00697, ETA 0s
I1207 13:07:27.376485 1 protocol.py:308] step 4 eval ConvNet: 12.10 +- 3.30% (2 nets, 4 epochs, 1s)
I1207 13:07:30.376485 1 protocol.py:308] baseline (1 random real images per class) ConvNet: 30.10 +- 1.30% (2 nets, 4 epochs, 3s)
"""


def test_the_benchmark_runs_the_readmes_first_main_command():
  words = readme_command.readme_command()
  assert words[:3] == ["python", "-m", "dd_jax.main"]
  cmd = readme_command.command_for(words, "ipc=1,runlocal", "/w", "/d")
  assert any(w.endswith(":ipc=1,runlocal") for w in cmd)
  assert "--workdir=/w" in cmd and "--config.data.data_dir=/d" in cmd


def test_phases_are_read_from_the_plan_and_the_timestamps():
  start = 13 * 3600 + 6 * 60 + 47.0
  lines = []
  for line in LOG.splitlines():
    stamp = line[6:21] if line.startswith("I1207") else None
    t = (int(stamp[:2]) * 3600 + int(stamp[3:5]) * 60 + float(stamp[6:]) - start
         if stamp else lines[-1][0])
    lines.append((t, line))
  got = readme_command.phases(lines, wall=45.0)
  assert got["estimated"] == {"experts": 6, "distillation": 74, "evaluations": 6,
                              "total": 3720}
  m = got["measured"]
  assert round(m["start-up"], 1) == 12.6
  # seconds after launch: plan 12.62, last expert epoch 20.35, last step 39.65; the
  # step-0 evaluation (2 s) falls inside the distillation, the step-4 one (1 s) and the
  # random subset's baseline (3 s) after it
  assert round(m["experts"], 2) == round(20.353702 - 12.622645, 2)
  assert round(m["distillation"], 2) == round(39.652080 - 20.353702 - 2, 2)
  assert m["evaluations"] == 6 and m["total"] == 45.0
  assert round(m["end"], 2) == round(45.0 - 39.652080 - 1 - 3, 2)


def test_the_last_evaluation_and_the_baselines_are_kept():
  lines = [(0.0, line) for line in LOG.splitlines()]
  assert readme_command.accuracies(lines) == {
      "distilled": "ConvNet 12.10 +- 3.30% (step 4 eval)",
      "baseline: 1 random real images per class": "ConvNet 30.10 +- 1.30%"}
