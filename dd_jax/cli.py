"""What every command-line entry point shares: one-line errors, quiet libraries."""
from __future__ import annotations

import contextlib
import logging as pylogging
import sys

from absl import logging

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
