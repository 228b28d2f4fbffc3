"""User-facing errors: one line that names the config field and the fix.

Library code raises `ConfigError`; the command-line entry points catch it and print the
one line instead of a traceback (`cli_errors`).
"""
from __future__ import annotations

import contextlib
import sys


class ConfigError(ValueError):
  """Bad input that the user can fix: which field, what is wrong, what to do."""

  def __init__(self, field: str, problem: str, fix: str):
    self.field, self.problem, self.fix = field, problem, fix
    super().__init__(f"{field}: {problem}. Fix: {fix}")


def require(condition: bool, field: str, problem: str, fix: str) -> None:
  if not condition:
    raise ConfigError(field, problem, fix)


@contextlib.contextmanager
def cli_errors():
  """Turns a ConfigError into one line on stderr and exit status 2."""
  try:
    yield
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
