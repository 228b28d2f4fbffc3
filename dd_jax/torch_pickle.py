"""torch.save files read into NumPy without torch and without running pickled code.

The pieces torch's pickles rebuild tensors with (`_rebuild_tensor_v2`, storages), on
NumPy, shared by the StyleGAN-XL converter (dd_jax/gan/convert.py: legacy storages
inside a pickle) and `load_state_dict` (a state dict written by torch.save, zip or
legacy format: e.g. torchvision's ResNet-18 weights). Only an allowlist of globals
resolves; a file that needs anything else is refused, naming the global.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from dd_jax.errors import ConfigError

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                  "HalfStorage": np.float16, "LongStorage": np.int64,
                  "IntStorage": np.int32, "ShortStorage": np.int16,
                  "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class StorageRef:
  """A storage's dtype marker inside a legacy torch.save stream."""

  def __init__(self, dtype):
    self.dtype = dtype


class _StorageUnpickler(pickle.Unpickler):
  """The small pickles of a legacy torch.save stream (magic, version, sys info, the
  storage reference, the key list): only storage classes resolve."""

  def __init__(self, f):
    super().__init__(f)
    self.refs = []

  def find_class(self, module, name):
    if module == "torch" and name in STORAGE_DTYPES:
      return StorageRef(STORAGE_DTYPES[name])
    raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a tensor storage")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    self.refs.append(pid)
    return pid


def _load_from_bytes(blob: bytes) -> np.ndarray:
  """torch.storage._load_from_bytes: a legacy torch.save stream of one storage -> the
  flat NumPy array of its elements."""
  f = io.BytesIO(blob)
  magic = _StorageUnpickler(f).load()
  if magic != LEGACY_MAGIC:
    raise pickle.UnpicklingError("a tensor storage is not a legacy torch.save stream")
  _StorageUnpickler(f).load()   # protocol version
  sys_info = _StorageUnpickler(f).load()
  if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
    raise pickle.UnpicklingError("big-endian tensor storages are not supported")
  inner = _StorageUnpickler(f)
  pid = inner.load()
  keys = _StorageUnpickler(f).load()
  arrays = {}
  for key in keys:
    ref = next(r for r in inner.refs if r[2] == key)
    dtype = np.dtype(ref[1].dtype)
    (count,) = struct.unpack("<q", f.read(8))
    arrays[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype.newbyteorder("<"))
  flat = arrays[pid[2]]
  view = pid[5] if len(pid) > 5 else None
  if view is not None:   # old view storages: (view key, offset, size)
    _, offset, size = view
    flat = flat[offset:offset + size]
  return flat


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  flat = np.asarray(storage)
  size, stride = tuple(size), tuple(stride)
  if not size:
    return flat[storage_offset:storage_offset + 1].reshape(()).copy()
  item = flat.dtype.itemsize
  return np.lib.stride_tricks.as_strided(flat[storage_offset:], size,
                                         [s * item for s in stride]).copy()


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
  return data


def _rebuild_from_type(func, new_type, args, state):
  return func(*args)



def _numpy_globals() -> dict:
  """NumPy's own array and scalar reconstruction (both module paths: numpy 1 and 2)."""
  try:
    from numpy._core import multiarray
  except ImportError:   # numpy 1
    from numpy.core import multiarray
  out = {}
  for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    out[(mod, "_reconstruct")] = multiarray._reconstruct
    out[(mod, "scalar")] = multiarray.scalar
  out[("numpy", "ndarray")] = np.ndarray
  out[("numpy", "dtype")] = np.dtype
  return out


# What rebuilds tensors, lists and dicts: all a file of tensors needs (the StyleGAN
# converter adds its own few on top).
TENSOR_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type"): _rebuild_from_type,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,
}


class _StateDictUnpickler(pickle.Unpickler):
  """A zip-format data.pkl: tensors from the archive's storages, nothing else."""

  def __init__(self, f, archive: zipfile.ZipFile, prefix: str, field: str):
    super().__init__(f)
    self.archive, self.prefix, self.field = archive, prefix, field
    self.storages: dict[str, np.ndarray] = {}

  def find_class(self, module, name):
    if module == "torch" and name in STORAGE_DTYPES:
      return StorageRef(STORAGE_DTYPES[name])
    if module == "torch" and name == "UntypedStorage":
      return StorageRef(np.uint8)
    found = TENSOR_GLOBALS.get((module, name))
    if found is None:
      raise ConfigError(self.field, f"the file needs {module}.{name}, which a file of "
                        "tensors does not: refused (it could run code)",
                        "save tensors, lists and dicts only (e.g. model.state_dict())")
    return found

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    ref, key = pid[1], str(pid[2])
    if key not in self.storages:
      dtype = np.dtype(ref.dtype if isinstance(ref, StorageRef) else np.uint8)
      raw = self.archive.read(f"{self.prefix}data/{key}")
      self.storages[key] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return self.storages[key]


def load(path: str, field: str = "path"):
  """Whatever tensors, lists, tuples and dicts a torch.save zip file holds (torch >= 1.6),
  tensors as NumPy arrays; a file that needs any other global is refused."""
  try:
    archive = zipfile.ZipFile(path)
  except (OSError, zipfile.BadZipFile) as e:
    raise ConfigError(field, f"{path} is not a torch.save zip file ({e})",
                      "give a .pth/.pt saved by torch >= 1.6") from None
  with archive:
    names = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if not names:
      raise ConfigError(field, f"{path} has no data.pkl", "give a torch.save file")
    prefix = names[0][:-len("data.pkl")]
    order = prefix + "byteorder"
    if order in archive.namelist() and archive.read(order).strip() != b"little":
      raise ConfigError(field, f"{path} is big-endian", "save it on a little-endian machine")
    try:
      obj = _StateDictUnpickler(io.BytesIO(archive.read(names[0])), archive, prefix,
                                field).load()
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, struct.error) as e:
      raise ConfigError(field, f"{path} is not a readable state dict ({e})",
                        "give a state dict saved with torch.save") from None
  return obj


def load_state_dict(path: str, field: str = "path") -> dict[str, np.ndarray]:
  """{name: array} of a torch.save'd state dict."""
  obj = load(path, field)
  if not isinstance(obj, dict):
    raise ConfigError(field, f"{path} holds a {type(obj).__name__}, not a state dict",
                      "save model.state_dict(), not the model")
  return {k: np.asarray(v) for k, v in obj.items()}
