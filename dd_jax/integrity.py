"""Checksums of saved arrays, checked when they are read back.

Orbax writes a checkpoint atomically, but nothing in it notices a file truncated or
overwritten afterwards (a full disk, a bad copy, a flipped block): TensorStore reads the
bytes it finds. So every checkpoint we write records a CRC-32 of its arrays' bytes, and
every restore recomputes it: a mismatch, or a file Orbax cannot read at all, becomes a
ConfigError naming the checkpoint and what to do, never a silent restart or garbage.
"""
from __future__ import annotations

import zlib
from typing import Any, Callable

import jax
import numpy as np

from dd_jax.errors import ConfigError


def _host(x) -> np.ndarray:
  """The full value of a (possibly replicated, multi-process) array on this host."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    if not x.is_fully_replicated:
      raise ValueError("checksums cover replicated or local arrays only")
    x = x.addressable_shards[0].data
  return np.ascontiguousarray(np.asarray(x))


def checksum(tree: Any) -> str:
  """CRC-32 over every leaf's dtype, shape and bytes, in tree order (8 hex digits)."""
  crc = 0
  for leaf in jax.tree.leaves(tree):
    value = _host(leaf)
    crc = zlib.crc32(f"{value.dtype}{value.shape}".encode(), crc)
    crc = zlib.crc32(value.view(np.uint8).reshape(-1), crc)
  return f"{crc:08x}"


def restore(read: Callable[[], Any], where: str, field: str, fix: str,
            expected: str | None = None, part: Callable[[Any], Any] = lambda x: x) -> Any:
  """`read()` (an Orbax restore), with its failures and a checksum mismatch of
  `part(restored)` against `expected` (None: not recorded, not checked) turned into a
  ConfigError naming `where`."""
  try:
    restored = read()
  except ConfigError:
    raise
  except Exception as e:   # TensorStore / Orbax errors: truncated, missing, unreadable
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise ConfigError(field, f"cannot read the checkpoint {where} ({type(e).__name__}: "
                      f"{first})", fix) from None
  if expected is not None:
    found = checksum(part(restored))
    if found != expected:
      raise ConfigError(field, f"the checkpoint {where} is corrupted (checksum {found}, "
                        f"recorded {expected})", fix)
  return restored
