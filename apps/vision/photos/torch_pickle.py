"""Reading a legacy (pre-1.6, non-zip) PyTorch state dict without torch and without running anything in it.

    read_state_dict(path, sha256, what, fix) -> {name: numpy array}
        checks the file's SHA-256 FIRST (a different file is refused before it is opened), then reads its five
        pickles with `RestrictedUnpickler` and the raw storages after them with numpy. Any other file, or a
        pickle naming any other global, is a DataError saying `what` was expected and `fix`.

A pickle can run any code when loaded. `RestrictedUnpickler` resolves only the four globals a state dict needs
(`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`, `torch.LongStorage`) to
local stand-ins and refuses every other name, so nothing named in the file is imported or called.
"""

import collections
import hashlib
import io
import pickle
import struct
from pathlib import Path

import numpy as np

from shared.errors import DataError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
# The only storage classes the file needs, with their element types (torch.FloatStorage is float32).
STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


class _StorageType:
    """What `torch.FloatStorage` / `torch.LongStorage` resolve to: the element type, nothing callable."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _StorageRef:
    def __init__(self, key, storage_type, numel):
        self.key, self.storage_type, self.numel = key, storage_type, numel


class _TensorRef:
    """A tensor's view of a storage, resolved to numpy once the raw storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _ints(values, what):
    if not isinstance(values, tuple) or not all(type(value) is int and value >= 0 for value in values):
        raise pickle.UnpicklingError(f"{what} is not a tuple of non-negative ints: {values!r}")
    return values


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Stand-in for `torch._utils._rebuild_tensor_v2`: records the view, checks the argument types."""
    if not isinstance(storage, _StorageRef) or type(storage_offset) is not int or storage_offset < 0:
        raise pickle.UnpicklingError("_rebuild_tensor_v2 called without a storage and an offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride) or not isinstance(requires_grad, bool) or backward_hooks:
        raise pickle.UnpicklingError("_rebuild_tensor_v2 called with unexpected arguments")
    return _TensorRef(storage, storage_offset, size, stride)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a PyTorch state dict needs, to local stand-ins; refuses every other one.

    Nothing named in the file is imported: `torch._utils._rebuild_tensor_v2` becomes `_rebuild_tensor_v2`
    above and `torch.FloatStorage` a `_StorageType`. Persistent ids must be `("storage", storage type,
    key, "cpu", element count, None)`.
    """

    ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
               *(("torch", name) for name in STORAGE_DTYPES)}

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"global '{module}.{name}' is not allowed: only {sorted('.'.join(g) for g in self.ALLOWED)}")
        if module == "collections":
            return collections.OrderedDict
        if module == "torch._utils":
            return _rebuild_tensor_v2
        return _StorageType(name)

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 6 and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id!r}")
        _, storage_type, key, location, numel, view_metadata = saved_id
        if (not isinstance(storage_type, _StorageType) or not isinstance(key, str) or location != "cpu"
                or type(numel) is not int or numel < 0 or view_metadata is not None):
            raise pickle.UnpicklingError(f"unexpected storage {saved_id!r}")
        if key not in self.storages:
            self.storages[key] = _StorageRef(key, storage_type, numel)
        return self.storages[key]


def _refuse(path, reason, what, fix):
    return DataError(
        f"Refusing the PyTorch weights file. Received: {path}: {reason}. Expected the legacy PyTorch state dict "
        f"of {what}, whose pickles name only tensors and storages. Fix: {fix}; nothing from this file was run."
    )


def read_state_dict(path, sha256, what="the expected weights", fix="get the file again"):
    """`{name: numpy array}` from a legacy PyTorch pickle, after its SHA-256 matches; DataError otherwise
    (`what` names the expected file and `fix` says how to get it, in the error).

    The layout (torch.serialization's legacy format): five pickles in a row (magic number, protocol
    version, system info, the state dict whose storages are persistent ids, the list of storage keys),
    then each storage in that order as an int64 element count and its raw little-endian elements.
    """
    path = Path(path)
    raw = path.read_bytes()  # hashed and unpickled from the same bytes
    actual = hashlib.sha256(raw).hexdigest()
    if actual != sha256:
        raise DataError(
            f"Checksum mismatch for the pretrained weights. Received: {path} with SHA-256 {actual}. Expected "
            f"{sha256} ({what}). The file was not opened. Fix: {fix}."
        )
    handle = io.BytesIO(raw)
    try:
        unpickler_storages = {}
        magic, protocol, system = (_restricted_load(handle, unpickler_storages) for _ in range(3))
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(system, dict):
            raise pickle.UnpicklingError("not a legacy PyTorch file (magic number or protocol version)")
        if not system.get("little_endian", False):
            raise pickle.UnpicklingError("written on a big-endian machine")
        state = _restricted_load(handle, unpickler_storages)
        keys = _restricted_load(handle, unpickler_storages)
    except DataError:
        raise
    except Exception as error:  # any malformed or disallowed pickle: nothing of it ran
        raise _refuse(path, f"{type(error).__name__}: {error}", what, fix) from None
    if not isinstance(state, collections.OrderedDict) or not isinstance(keys, list):
        raise _refuse(path, "the pickle is not a state dict (an OrderedDict of tensors)", what, fix)
    arrays = {}
    offset = handle.tell()
    for key in keys:
        storage = unpickler_storages.get(key)
        if storage is None:
            raise _refuse(path, f"storage {key!r} is listed but no tensor uses it", what, fix)
        (count,) = struct.unpack_from("<q", raw, offset) if offset + 8 <= len(raw) else (-1,)
        end = offset + 8 + count * storage.storage_type.dtype.itemsize
        if count != storage.numel or end > len(raw):
            raise _refuse(path, f"storage {key!r} holds {count} elements, expected {storage.numel}", what, fix)
        arrays[key] = np.frombuffer(raw, storage.storage_type.dtype, count, offset + 8)
        offset = end
    if offset != len(raw):
        raise _refuse(path, f"{len(raw) - offset} bytes after the last storage", what, fix)
    tensors = {}
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, _TensorRef) or tensor.storage.key not in arrays:
            raise _refuse(path, f"entry {name!r} is not a tensor over a stored storage", what, fix)
        storage = arrays[tensor.storage.key]
        last = tensor.offset + sum((size - 1) * stride for size, stride in zip(tensor.size, tensor.stride))
        if any(size == 0 for size in tensor.size) or last >= len(storage):
            raise _refuse(path, f"tensor {name!r} reaches past its storage", what, fix)
        itemsize = storage.dtype.itemsize
        tensors[name] = np.lib.stride_tricks.as_strided(
            storage[tensor.offset:], tensor.size, tuple(stride * itemsize for stride in tensor.stride)).copy()
    return tensors


def _restricted_load(handle, storages):
    unpickler = RestrictedUnpickler(handle)
    unpickler.storages = storages  # one storage table across the pickles of the file
    return unpickler.load()
