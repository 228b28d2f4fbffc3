"""The study scripts' --smoke runs (see tests/test_benchmarks_smoke.py), in their own
file so that --dist loadfile runs them beside the other half."""
import pytest

from tests.test_benchmarks_smoke import SMOKE, STUDIES, run_smoke


@pytest.mark.parametrize("script", STUDIES)
def test_study_smoke(script, tmp_path):
  assert script in SMOKE
  run_smoke(script, tmp_path)
