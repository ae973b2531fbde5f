"""Read a PyTorch state dict saved in PyTorch's legacy format, without PyTorch.

A ``.pth`` file is a pickle, and unpickling runs whatever functions the file names. So this
reader allows exactly the globals a tensor checkpoint needs (the tensor-rebuild function,
the storage classes, ``collections.OrderedDict``) and refuses every other one by name.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``) is five
things one after another:

1. a pickled magic number, 2. a pickled protocol version (1001), 3. a pickled dict of
   system information (byte order, type sizes);
4. the pickled state dict, in which every tensor refers to a storage through a
   *persistent id* ``("storage", StorageClass, key, location, numel, view)``;
5. the pickled list of storage keys, then each storage's raw bytes in that order, each
   preceded by its element count as a little-endian int64.
"""

from __future__ import annotations

import collections
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data.errors import DataError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# PyTorch's storage classes and the little-endian NumPy dtype of their elements.
STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
ALLOWED_GLOBALS = (
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    *(f"torch.{name}" for name in STORAGE_DTYPES),
)


class CheckpointError(DataError):
    """A file is not a readable PyTorch legacy checkpoint; the message names the file and the fault."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint names a global outside the allow-list: it would run code, so it is refused."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    offset: int  # elements into the root storage (non-zero only for a storage view)


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Stands in for ``torch._utils._rebuild_tensor_v2``: records where the tensor's values are."""
    if not isinstance(storage, _Storage):
        raise CheckpointError("a tensor refers to something that is not a storage")
    if not (_ints(size) and _ints(stride) and len(size) == len(stride) and _ints([storage_offset])):
        raise CheckpointError(f"a tensor has an invalid size {size!r} or stride {stride!r}")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _ints(values) -> bool:
    return isinstance(values, (tuple, list)) and all(isinstance(v, int) and v >= 0 for v in values)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream, path: Path):
        super().__init__(stream)
        self.path = path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, np.dtype(STORAGE_DTYPES[name]))
        raise UnsafeCheckpointError(
            f"{self.path}: the checkpoint names the global {module}.{name}, which is not allowed. "
            f"Unpickling it could run arbitrary code, so the file is refused. Only these are allowed: "
            f"{', '.join(ALLOWED_GLOBALS)}."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _ints([numel]):
            raise CheckpointError(f"{self.path}: malformed storage reference {pid!r:.80}")
        root = self.storages.setdefault(key, _Storage(key, storage_type.dtype, numel, 0))
        if root.dtype != storage_type.dtype or root.numel != numel:
            raise CheckpointError(f"{self.path}: storage {key} is described twice, differently")
        if view is None:
            return root
        view_key, offset, view_numel = view
        if not _ints([offset, view_numel]) or offset + view_numel > numel:
            raise CheckpointError(f"{self.path}: storage view {view_key} lies outside storage {key}")
        return _Storage(key, root.dtype, view_numel, offset)


def read_torch_checkpoint(path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch legacy-format state dict, as NumPy arrays, without PyTorch.

    Parameters
    ----------
    path : str or Path
        A ``.pth`` file written by ``torch.save(state_dict)`` in the legacy (non-zip) format.

    Returns
    -------
    dict of str to numpy.ndarray
        Each tensor under its state-dict key (``"_conv_stem.weight"`` ...), with the tensor's
        shape and its storage's dtype (float32 for weights, int64 for counters), in file order.

    Raises
    ------
    UnsafeCheckpointError
        The pickle names a global other than ``collections.OrderedDict``,
        ``torch._utils._rebuild_tensor_v2`` or a storage class; the message names it.
    CheckpointError
        The file is not a legacy checkpoint (for example a zip-format one), is truncated, or
        describes a tensor that does not fit its storage.
    """
    path = Path(path)
    with open(path, "rb") as stream:
        try:
            header = [_PlainData(stream).load() for _ in range(3)]
        except (pickle.UnpicklingError, EOFError, ValueError, IndexError) as error:
            raise CheckpointError(f"{path}: not a PyTorch legacy checkpoint ({error})") from None
        magic, protocol, system = header
        if magic != MAGIC_NUMBER or protocol != PROTOCOL_VERSION or not isinstance(system, dict):
            raise CheckpointError(
                f"{path}: not a PyTorch legacy checkpoint (wrong magic number or protocol version); "
                "zip-format checkpoints (torch >= 1.6 default) are not supported"
            )
        if system.get("little_endian") is not True:
            raise CheckpointError(f"{path}: written on a big-endian machine; only little-endian files are supported")
        unpickler = _RestrictedUnpickler(stream, path)
        try:
            state = unpickler.load()
            keys = _PlainData(stream).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError) as error:
            raise CheckpointError(f"{path}: the state dict cannot be read ({type(error).__name__}: {error})") from None
        if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
            raise CheckpointError(f"{path}: not a state dict (a mapping of names to tensors)")
        data = _read_storages(stream, path, keys, unpickler.storages)
    return {name: _tensor(data, name, ref, path) for name, ref in state.items()}


class _PlainData(pickle.Unpickler):
    """For the pickles around the state dict (header, storage keys): plain data, no global at all."""

    def find_class(self, module, name):
        raise UnsafeCheckpointError(f"the checkpoint names the global {module}.{name} outside the state dict; refused")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("a persistent id outside the state dict")


def _read_storages(stream, path: Path, keys, storages: dict[str, _Storage]) -> dict[str, np.ndarray]:
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise CheckpointError(f"{path}: the list of storages does not match the tensors that use them")
    remaining = os.fstat(stream.fileno()).st_size - stream.tell()
    expected = sum(8 + storage.numel * storage.dtype.itemsize for storage in storages.values())
    if remaining != expected:
        what = "ends early (truncated?)" if remaining < expected else "has unexpected bytes after the last storage"
        raise CheckpointError(f"{path}: the file {what}: {remaining:,} bytes of storages, {expected:,} expected")
    data = {}
    for key in keys:
        storage = storages[key]
        count = np.frombuffer(_read_exactly(stream, 8, path), dtype="<i8")[0]
        if count != storage.numel:
            raise CheckpointError(f"{path}: storage {key} holds {count} values, its tensors expect {storage.numel}")
        raw = _read_exactly(stream, storage.numel * storage.dtype.itemsize, path)
        data[key] = np.frombuffer(raw, dtype=storage.dtype)
    return data


def _read_exactly(stream, size: int, path: Path) -> bytes:
    chunk = stream.read(size)
    if len(chunk) != size:
        raise CheckpointError(f"{path}: the file ends early (truncated?)")
    return chunk


def _tensor(data: dict[str, np.ndarray], name: str, ref: _TensorRef, path: Path) -> np.ndarray:
    """Copy a tensor's values out of its storage, after checking they lie inside it."""
    values = data[ref.storage.key]
    start = ref.storage.offset + ref.offset
    last = start + sum((size - 1) * stride for size, stride in zip(ref.shape, ref.stride, strict=True) if size)
    if (all(ref.shape) and last >= ref.storage.offset + ref.storage.numel) or start > values.size:
        raise CheckpointError(f"{path}: tensor {name} of shape {ref.shape} does not fit in its storage")
    strides = tuple(s * values.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(values[start:], shape=ref.shape, strides=strides, writeable=False)
    array = np.array(view, dtype=values.dtype.newbyteorder("="))
    if array.shape != ref.shape:
        raise CheckpointError(f"{path}: tensor {name} has shape {array.shape}, expected {ref.shape}")
    return array
