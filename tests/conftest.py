"""Test set-up: the repo root on sys.path (configs/, benchmarks/), tiny datasets."""
import gzip
import os
import shutil
import sys
import tempfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# The tests' programs are small and compiling them is most of the suite's time: XLA's
# backend (LLVM) optimisation is turned off for them (the same programs, compiled ~1/3
# faster, run a little slower). Benchmarks and runs keep the default.
FAST_COMPILE = "--xla_backend_optimization_level=0"
if FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

# One persistent XLA compilation cache for this test session, made before JAX is
# imported: the xdist workers and every child process (CLI runs, launch/local.sh, the
# 8-device checks) inherit it, so a program compiled by one test is read back by the
# next (as the command line does with ~/.cache/dd_jax/xla, see dd_jax.cli).
# Every program is kept, not only those that took a second to compile (JAX's default):
# the many small ones are most of what a child process (a CLI run, a killed and resumed
# run) would otherwise compile again; a whole tiny run started 25% faster with them.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
_OWN_CACHE = None
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
  _OWN_CACHE = tempfile.mkdtemp(prefix="dd_jax_test_xla_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
# The baseline accuracies' cache (dd_jax/evaluate/baselines.py) likewise: the session's
# own, not the user's ~/.cache.
_OWN_BASELINES = None
if not os.environ.get("DD_JAX_BASELINES"):
  _OWN_BASELINES = tempfile.mkdtemp(prefix="dd_jax_test_baselines_")
  os.environ["DD_JAX_BASELINES"] = _OWN_BASELINES
# And the plan's step rates (dd_jax/distill/estimate.py).
_OWN_RATES = None
if not os.environ.get("DD_JAX_RATES"):
  _OWN_RATES = tempfile.mkdtemp(prefix="dd_jax_test_rates_")
  os.environ["DD_JAX_RATES"] = _OWN_RATES


def pytest_unconfigure(config):
  if not hasattr(config, "workerinput"):   # the session that made them
    for folder in (_OWN_CACHE, _OWN_BASELINES, _OWN_RATES):
      if folder:
        shutil.rmtree(folder, ignore_errors=True)


def write_idx(path, array):
  """Writes an unsigned-byte IDX file (gzipped when path ends with .gz)."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
      int(d).to_bytes(4, "big") for d in array.shape)
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())


def make_images(num_per_class, num_classes=10, size=28, seed=0):
  """Class-dependent blobs: class c is a bright bar at row 2c + noise; learnable."""
  rng = np.random.default_rng(seed)
  n = num_per_class * num_classes
  y = np.repeat(np.arange(num_classes), num_per_class)
  x = rng.integers(0, 60, size=(n, size, size), dtype=np.uint8)
  for i, c in enumerate(y):
    r = (2 * c + 2) % (size - 3)
    x[i, r: r + 3, 4: size - 4] = 230
  perm = rng.permutation(n)
  return x[perm], y[perm].astype(np.uint8)


def write_idx_dataset(d):
  """A tiny Fashion-MNIST-shaped IDX folder (20 train / 5 test per class), gzipped."""
  x, y = make_images(20, seed=0)
  xt, yt = make_images(5, seed=1)
  d.mkdir()
  write_idx(str(d / "train-images-idx3-ubyte.gz"), x)
  write_idx(str(d / "train-labels-idx1-ubyte.gz"), y)
  write_idx(str(d / "t10k-images-idx3-ubyte.gz"), xt)
  write_idx(str(d / "t10k-labels-idx1-ubyte.gz"), yt)
  return str(d)


@pytest.fixture
def idx_dir(tmp_path):
  return write_idx_dataset(tmp_path / "idx")


def tiny_idx_config(data_dir):
  """The Fashion-MNIST MTT runlocal config on a `write_idx_dataset` folder, with a
  width-8 ConvNet and expert batches of 32: the tests' smallest real setup (unlocked
  overrides go through `config.unlocked()`)."""
  from configs import fashion_mnist_mtt  # pylint: disable=g-import-not-at-top
  config = fashion_mnist_mtt.get_config("runlocal")
  with config.unlocked():
    config.data.source = "idx"
    config.data.data_dir = data_dir
    config.data.train_per_class = 0
    config.model.width = 8
    config.expert.batch_size = 32
  return config


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Every compiled XLA program keeps ~6 memory mappings alive; the whole suite in one
  process came close to the kernel's vm.max_map_count (65530), where XLA's compiler
  crashed. Compiled programs are released after each test module."""
  yield
  import jax  # pylint: disable=g-import-not-at-top
  jax.clear_caches()


# Files whose tests start child processes (8-device and two-process runs, notebook
# kernels; minutes each):
# run first, so that the two xdist workers (--dist loadfile, files handed out in
# collection order) do not end with one of them alone on these.
START_FIRST = ("tests/test_sharding.py", "tests/distill/test_multiprocess.py",
               "tests/test_notebooks.py")


def pytest_collection_modifyitems(config, items):
  del config
  items.sort(key=lambda item: not item.nodeid.startswith(START_FIRST))
