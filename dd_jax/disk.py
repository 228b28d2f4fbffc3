"""The workdir checks every run makes before it computes anything: can it write there,
and is there room for what it will write.

`check_writable` probes the folder (or, when it does not exist yet, the nearest existing
parent, so that a refused start leaves nothing behind) by writing and deleting a small
file: permissions, read-only file systems and full disks all show up as the OSError
they are. `check_space` compares the free bytes with an estimate of the run's outputs.
"""
from __future__ import annotations

import os
import shutil
import socket

from dd_jax.errors import ConfigError

MiB = 2 ** 20
SLACK = 64 * MiB   # metrics, reports, JSON: small but not nothing


def _existing(path: str) -> str:
  """`path`, or its nearest parent that exists."""
  path = os.path.abspath(path)
  while not os.path.exists(path):
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return path


def check_writable(folder: str, field: str = "--workdir") -> None:
  """Refuses a folder this process cannot create or write to, naming the reason."""
  base = _existing(folder)
  if not os.path.isdir(base):
    raise ConfigError(field, f"{folder} cannot be created: {base} is a file, not a folder",
                      "choose a folder path")
  probe = os.path.join(base, f".dd_jax_write_probe.{socket.gethostname()}.{os.getpid()}")
  try:
    with open(probe, "wb") as f:
      f.write(b"\0" * 4096)
      f.flush()
      os.fsync(f.fileno())
  except OSError as e:
    raise ConfigError(field, f"cannot write to {base} ({e.strerror})",
                      "free space there or choose a folder you can write to") from None
  finally:
    if os.path.exists(probe):
      os.remove(probe)


def check_space(folder: str, needs: dict[str, int], field: str, fix: str) -> None:
  """Refuses to start when the disk holding `folder` has less free space than the sum of
  `needs` (what -> bytes) plus some slack."""
  total = sum(needs.values()) + SLACK
  free = shutil.disk_usage(_existing(folder)).free
  if free < total:
    parts = ", ".join(f"{what} {n / MiB:.0f} MiB" for what, n in needs.items() if n)
    raise ConfigError(field, f"{free / MiB:.0f} MiB free on the disk of {folder}, the run "
                      f"needs about {total / MiB:.0f} MiB ({parts})", fix)


def tree_bytes(tree) -> int:
  """Bytes of the arrays (or ShapeDtypeStructs) of a pytree."""
  import jax  # pylint: disable=g-import-not-at-top
  return sum(int(x.size) * x.dtype.itemsize for x in jax.tree.leaves(tree))
