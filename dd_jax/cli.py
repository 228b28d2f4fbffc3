"""What every command-line entry point shares: one-line errors, quiet libraries."""
from __future__ import annotations

import contextlib
import logging as pylogging
import os
import sys
from typing import Callable

from absl import app, flags, logging
import jax
import ml_collections
from ml_collections import config_flags

from dd_jax import distributed
from dd_jax.errors import ConfigError


class _DropLibraryInfo(pylogging.Filter):
  """Orbax logs every save at INFO; keep its warnings, drop its chatter."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    noisy = "orbax" in record.pathname or "xla_bridge" in record.pathname
    return record.levelno >= pylogging.WARNING or not noisy


def setup_logging() -> None:
  logging.set_verbosity(logging.INFO)
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _DropLibraryInfo) for f in handler.filters):
    handler.addFilter(_DropLibraryInfo())


# XLA's persistent compilation cache: a program compiled once (by the memory planner, an
# earlier process of the same run, a resumed run) is read back instead of compiled again.
# DD_JAX_XLA_CACHE names the folder ("off": no cache); JAX_COMPILATION_CACHE_DIR, when
# set, is JAX's own and wins.
XLA_CACHE_ENV = "DD_JAX_XLA_CACHE"
XLA_CACHE_DEFAULT = os.path.join("~", ".cache", "dd_jax", "xla")
XLA_CACHE_MAX_BYTES = 4 * 2 ** 30   # least recently used programs are dropped beyond


def use_compilation_cache() -> str | None:
  """Turns on the persistent compilation cache for programs that take a second or more
  to compile; returns its folder (None when off)."""
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return os.environ["JAX_COMPILATION_CACHE_DIR"]
  folder = os.environ.get(XLA_CACHE_ENV, XLA_CACHE_DEFAULT)
  if folder.lower() in ("off", "0", "none", ""):
    return None
  folder = os.path.expanduser(folder)
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_compilation_cache_max_size", XLA_CACHE_MAX_BYTES)
  return folder


@contextlib.contextmanager
def cli_errors():
  """Turns a ConfigError into one line on stderr and exit status 2."""
  try:
    yield
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def run_with_config(command: Callable[[ml_collections.ConfigDict, str], str]) -> None:
  """The whole of a `python -m dd_jax.<x>` entry point: --config and --workdir flags,
  quiet library logs, one-line errors; prints what `command(config, workdir)` returns."""
  config_flags.DEFINE_config_file("config", None, "Experiment config file "
                                  "(configs/<file>.py[:variant]).", lock_config=True)
  flags.DEFINE_string("workdir", None, "Run folder.")
  flags.mark_flags_as_required(["config", "workdir"])

  def main(argv):
    del argv
    setup_logging()
    with cli_errors():
      distributed.initialize(flags.FLAGS.config)   # before JAX looks for devices
      cache = use_compilation_cache()
      logging.info("JAX %s, devices: %s, compilation cache: %s", jax.__version__,
                   jax.devices(), cache or f"off ({XLA_CACHE_ENV}=off)")
      print(command(flags.FLAGS.config, flags.FLAGS.workdir))

  app.run(main)
