"""Reader for the IDX file format of MNIST and Fashion-MNIST (plain or gzip-compressed).

IDX: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions, then
one big-endian uint32 per dimension, then the data. No TensorFlow here.
"""

import functools
import gzip
import zlib
from pathlib import Path

import numpy as np

from shared.errors import DataError

UINT8 = 0x08


def read_idx(path, expected_ndim):
    """Return the array stored in IDX file `path`; DataError names the file and the fix."""
    path = Path(path)
    stat = path.stat()
    return _read_idx_cached(str(path), stat.st_mtime_ns, stat.st_size, expected_ndim)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path, _mtime, _size, expected_ndim):
    fix = "Fix: re-download the official file or reinstall it (apt-get install --reinstall dataset-fashion-mnist)."
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError as error:
        raise _unreadable(path, error, fix) from None
    if head != b"\x1f\x8b":
        raw = _read_plain(path, fix)
    else:
        raw = _read_gzip(path, fix)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != UINT8 or raw[3] != expected_ndim:
        magic = raw[:4].hex() if len(raw) >= 4 else raw.hex()
        raise DataError(
            f"Not an IDX file of uint8 with {expected_ndim} dimensions: {path}. Received: magic number "
            f"0x{magic}. Expected 0x000008{expected_ndim:02x}. {fix}"
        )
    header_size = 4 + 4 * expected_ndim
    if len(raw) < header_size:
        raise DataError(f"Truncated IDX file {path}: its header is incomplete. Received: {len(raw)} bytes. Expected "
                        f"at least {header_size} bytes of header for {expected_ndim} dimensions. {fix}")
    shape = tuple(int(value) for value in np.frombuffer(raw[4:header_size], dtype=">u4"))
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"Truncated or padded IDX file {path}. Received: {len(raw)} bytes. Expected {expected} bytes: the header "
            f"declares shape {shape}. {fix}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_plain(path, fix):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise _unreadable(path, error, fix) from None


def _unreadable(path, error, fix):
    return DataError(f"Cannot read IDX file {path}. Received: {type(error).__name__}: {error}. Expected a readable "
                     f"file. {fix}")


def _read_gzip(path, fix):
    """The decompressed bytes; a stream corrupted or cut mid-way is a DataError naming the file."""
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise DataError(
            f"Corrupt gzip file {path}: its compressed data cannot be decompressed. Received: "
            f"{'zlib.error' if isinstance(error, zlib.error) else type(error).__name__}: {error}. "
            f"Expected a complete gzip stream. {fix}"
        ) from None


SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_file(directory, stem):
    for name in (stem, f"{stem}.gz"):
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    return None


def has_idx_files(directory):
    return all(find_file(directory, stem) for pair in SPLIT_FILES.values() for stem in pair)


def load_split(directory, split):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of `split` from the IDX files in `directory`."""
    image_stem, label_stem = SPLIT_FILES[split]
    images = read_idx(find_file(directory, image_stem), 3)
    labels = read_idx(find_file(directory, label_stem), 1)
    if len(images) != len(labels):
        raise DataError(
            f"The {split} images and labels disagree in {directory}. Received: {len(images)} images, "
            f"{len(labels)} labels. Expected one label per image. Fix: use the image and label files of one release."
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"Invalid {split} labels in {directory}. Received: label {labels.max()}. Expected classes "
                        "0-9. Fix: use the official label file.")
    return images, labels
