"""The notebooks run top to bottom on CPU with their small setting (as CI does)."""
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import FAST_COMPILE, ROOT

NOTEBOOKS = os.path.join(ROOT, "notebooks")


def _execute(name, tmp_path, optimise=False):
  """Runs notebooks/<name>.ipynb in a fresh kernel (a cell error fails the test);
  returns the text it printed and how many images it displayed. `optimise`: XLA
  optimises as for a user (for a notebook whose time is running, not compiling)."""
  nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
  flags = os.environ.get("XLA_FLAGS", "")
  if optimise:
    flags = flags.replace(FAST_COMPILE, "").strip()
  env = dict(os.environ, DD_JAX_RUNS=str(tmp_path), DD_JAX_REPO=ROOT,
             PYTHONPATH=ROOT, DD_JAX_NOTEBOOK_SMALL="1", XLA_FLAGS=flags)
  client = NotebookClient(nb, timeout=900, kernel_name="python3",
                          resources={"metadata": {"path": NOTEBOOKS}})
  client.km = client.create_kernel_manager()
  client.start_new_kernel(env=env)
  client.start_new_kernel_client()
  try:
    client.execute(cleanup_kc=False, reset_kc=False)
  finally:
    client._cleanup_kernel()  # pylint: disable=protected-access
  text, images = [], 0
  for cell in nb.cells:
    for out in cell.get("outputs", []):
      text.append(out.get("text", ""))
      images += "image/png" in out.get("data", {})
  return "".join(text), images


def test_the_quick_start_distils_and_shows_the_set(tmp_path):
  text, images = _execute("quickstart", tmp_path)
  assert "tiny runlocal setting" in text and "distilled 4 steps" in text
  assert images == 3                       # the images, the accuracy, the matching loss
  assert os.path.exists(tmp_path / "fashion_mnist_mtt_ipc1_small" / "synset.npz")
  assert not [n for n in os.listdir(NOTEBOOKS) if not n.endswith((".ipynb", ".md"))]


def test_the_losses_notebook_lowers_the_matching_loss_with_our_functions_only(tmp_path):
  nb = nbformat.read(os.path.join(NOTEBOOKS, "losses_in_your_own_code.ipynb"), 4)
  code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
  assert set(re.findall(r"from dd_jax[.\w]* import \w+|import dd_jax\S*", code)) == {
      "from dd_jax import losses"}         # nothing else of ours
  text, images = _execute("losses_in_your_own_code", tmp_path, optimise=True)
  first, last = map(float, re.search(r"matching loss ([\d.]+) -> ([\d.]+)", text).groups())
  assert last < first
  real, distilled = map(float, re.search(r"real ([\d.]+), distilled ([\d.]+)", text).groups())
  assert 0.1 < real <= 1 and 0.1 < distilled <= 1 and images == 1


def test_the_gan_notebook_trains_a_prior_and_keeps_the_best_space(tmp_path):
  text, images = _execute("gan_prior", tmp_path)
  assert re.search(r"pixel MSE ([\d.]+) -> ([\d.]+)", text)
  scores = {int(k): (float(d), float(a)) for k, d, a in re.findall(
      r"layer (\d): distance ([\d.]+), held-out accuracy ([\d.]+)", text)}
  assert sorted(scores) == [1, 2, 3]        # the runlocal prior's three synthesis layers
  chosen = int(re.search(r"chosen: layer (\d) \(by accuracy\)", text).group(1))
  assert scores[chosen][1] == max(a for _, a in scores.values())
  assert images == 3                        # the prior's samples, the images, the accuracy
  assert os.path.exists(tmp_path / "fashion_mnist_hpd_ipc1_small" / "synset.npz")


@pytest.mark.parametrize("name", ["quickstart", "losses_in_your_own_code", "gan_prior"])
def test_notebooks_are_committed_without_outputs(name):
  nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
  nbformat.validate(nb)
  assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", ["quickstart", "losses_in_your_own_code", "gan_prior"])
def test_notebooks_clone_only_from_an_address_the_user_gives(name):
  """No invented repository address: a notebook that must fetch dd_jax takes it from
  DD_JAX_REPO_URL (or the REPO_URL the user sets) and says so when it is missing."""
  nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
  code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
  assert not re.search(r"https?://(github|gitlab)\.com/", code)
  if "REPO_URL" in code:
    assert 'os.environ.get("DD_JAX_REPO_URL", "")' in code
    assert "if not REPO_URL:" in code
