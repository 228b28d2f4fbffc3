"""JSON metadata shared by expert folders, evaluation results and synthetic sets:
atomic writes (never a half-written file) and the comparison that names what differs."""
from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np


def write_bytes_atomic(path: str, data: bytes) -> None:
  """Writes to a temporary file, then renames: readers see the old file or the new one."""
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def write_npz_atomic(path: str, **arrays) -> None:
  """np.savez to `path` through write_bytes_atomic."""
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  write_bytes_atomic(path, buf.getvalue())


def read_npz(path: str, field: str | None = None, fix: str = "") -> dict[str, np.ndarray]:
  """Every array of an .npz, read now. Pickled (object) arrays are refused, never
  unpickled. With `field`, a missing, truncated or pickle-bearing file is one
  ConfigError naming the file, `field` and `fix`."""
  import zipfile
  from dd_jax.errors import ConfigError
  try:
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    if field is None:
      raise
    reason = ("it holds pickled objects, which are never loaded" if "pickle" in str(e)
              else f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
    raise ConfigError(field, f"{path} is not a readable .npz ({reason})", fix) from None


def read_json(path: str, field: str, fix: str) -> Any:
  """A JSON file, or one ConfigError naming the file, `field` and `fix` if damaged."""
  from dd_jax.errors import ConfigError
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ConfigError(field, f"{path} is not valid JSON ({e.msg})", fix) from e


def read_json_if_sound(path: str) -> Any:
  """A JSON file's contents, or None when it is missing or damaged: for records a run
  can make again (a cache entry, a finished-run marker), where damage means "redo"."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_json_atomic(path: str, obj: Any) -> None:
  write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def spec_difference(found: dict, expected: dict, prefix: str = "") -> str | None:
  """The first field (dotted) whose value differs, or None."""
  for key in sorted(set(found) | set(expected)):
    a, b = found.get(key), expected.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      diff = spec_difference(a, b, f"{prefix}{key}.")
      if diff:
        return diff
    elif a != b:
      return f"{prefix}{key} (stored {a!r}, config {b!r})"
  return None
