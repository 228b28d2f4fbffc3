"""The --smoke runs of the scripts that compare dd_jax with the official code: our side
always; the official side too where DD_JAX_OFFICIAL_MTT names a checkout of
GeorgeCazenavette/mtt-distillation (CI has none: it is fetched, never committed)."""
import os

import pytest

from tests.test_benchmarks_smoke import NEEDS_TORCH, run_smoke

OFFICIAL = os.environ.get("DD_JAX_OFFICIAL_MTT", "")


@pytest.mark.parametrize("script", NEEDS_TORCH)
def test_our_side_of_a_torch_script(script, tmp_path):
  pytest.importorskip("torch")
  run_smoke(script, tmp_path)


@pytest.mark.skipif(not OFFICIAL, reason="no official checkout: set DD_JAX_OFFICIAL_MTT")
@pytest.mark.parametrize("script, expect", [
    ("eval_parity", "random:1:0 official: "),
    ("official_gradient", "| float64 | "),
])
def test_both_sides_against_the_official_checkout(script, expect, tmp_path):
  pytest.importorskip("torch")
  run_smoke(script, tmp_path, (f"--official={OFFICIAL}",), expect)
