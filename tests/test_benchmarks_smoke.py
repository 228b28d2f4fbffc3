"""Every script in benchmarks/ runs in its --smoke mode (tiny shapes, a step or two), so
an API change that breaks a benchmark fails the suite instead of the next measurement."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCHMARKS = os.path.join(ROOT, "benchmarks")
# script -> what its smoke run must print (a line of its figures)
SMOKE = {
    "conv_kernels": "grad-of-grad (matching)",
    "distill_step": "ours_remat",
    "evaluation": "nets x 2 epochs",
    "expert_training": "img/s",
    "fashion_mnist": "| 1 | mtt | hard |",
    "synset_identity": "mtt: 5 arrays",
    "pad_ablation": "| 1 | ",
    "ast_ablation": "| 1 | ",
    "idc_fmnist": "| seqidc | ",
    "seqmatch_fmnist": "| seqmatch-shared | ",
    "readme_command": "| distillation |",
    "first_output": "dd_jax.main: first line",
    "kd_eval": "| smoke_run | 10 |",
    "gan_prior": "expert accuracy on prior samples",
    "scale_out": "| ipc10_no_remat | ",
    "hpd_fmnist": "| hpd_code | ",
    "eval_parity": "| random:1:0 | ",
    "official_gradient": '"step_losses_ours"',
}
# Scripts whose --smoke mode is still to be written (issue 30): this list only shrinks.
NOT_YET = {
    "official_parity", "parity_cores",
}


def test_every_benchmark_has_a_smoke_run_or_is_listed_as_not_yet():
  scripts = {n[:-3] for n in os.listdir(BENCHMARKS)
             if n.endswith(".py") and n not in ("__init__.py", "common.py")}
  assert scripts == set(SMOKE) | NOT_YET and not set(SMOKE) & NOT_YET


# The study scripts (each a chain of dd_jax processes) run from a second file, so that
# the suite's --dist loadfile spreads the smoke runs over both workers.
STUDIES = ("fashion_mnist", "synset_identity", "pad_ablation", "ast_ablation", "idc_fmnist",
           "seqmatch_fmnist", "gan_prior", "scale_out", "hpd_fmnist")


def run_smoke(script: str, tmp_path, args: tuple[str, ...] = (), expect: str = "") -> None:
  """`script --smoke *args` succeeds and prints `expect` (default: SMOKE[script])."""
  r = subprocess.run([sys.executable, os.path.join(BENCHMARKS, f"{script}.py"), "--smoke",
                      *args], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                     env=dict(os.environ, PYTHONPATH=ROOT))
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
  assert (expect or SMOKE[script]) in r.stdout, r.stdout[-2000:]


# Scripts whose smoke run needs PyTorch (tests/test_benchmarks_smoke_official.py runs them).
NEEDS_TORCH = ("official_gradient",)


@pytest.mark.parametrize("script", sorted(set(SMOKE) - set(STUDIES) - set(NEEDS_TORCH)))
def test_smoke(script, tmp_path):
  run_smoke(script, tmp_path)
