"""What every command-line entry point shares: one-line errors, quiet libraries."""
from __future__ import annotations

import contextlib
import logging as pylogging
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
      logging.info("JAX %s, devices: %s", jax.__version__, jax.devices())
      print(command(flags.FLAGS.config, flags.FLAGS.workdir))

  app.run(main)
