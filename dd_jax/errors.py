"""User-facing errors: one line that names the config field and the fix.

Library code raises `ConfigError`; the command-line entry points catch it and print the
one line instead of a traceback (dd_jax/cli.py).
"""
from __future__ import annotations


class ConfigError(ValueError):
  """Bad input that the user can fix: which field, what is wrong, what to do."""

  def __init__(self, field: str, problem: str, fix: str):
    self.field, self.problem, self.fix = field, problem, fix
    super().__init__(f"{field}: {problem}. Fix: {fix}")


def require(condition: bool, field: str, problem: str, fix: str) -> None:
  if not condition:
    raise ConfigError(field, problem, fix)


def require_at_least(section, prefix: str, minimums: dict[str, float]) -> None:
  """Checks numeric config fields against lower bounds, e.g. {"epochs": 1}."""
  for name, low in minimums.items():
    value = section[name]
    require(value >= low, f"{prefix}.{name}", f"is {value}", f"set it to >= {low}")
