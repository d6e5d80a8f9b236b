"""Finding a dataset's folder, the same way for every app.

Where a run looks, in order:
1. `--data-dir DIR`: DIR itself, then `DIR/<name>` (DIR may be the datasets' root), then each `subfolders`
   entry below those (for example MovieLens' `ml-100k/`);
2. else `$DLSUITE_DATA_DIR/<name>` (and its `subfolders`);
3. else the system locations the app names (Debian's `/usr/share/datasets/...`).

The first folder `looks_right` accepts wins. When none does, a named `--data-dir` is an error; without one the
app's `fallback` (for example "tfds": download once with TFDS) is returned when it has one, else an error. Every
error is one `DataError` in the "Received: ... Expected ... Fix: ..." form, listing the folders looked in.
"""

import os
from pathlib import Path

from shared.errors import DataError

ENVIRONMENT_VARIABLE = "DLSUITE_DATA_DIR"


def environment_root():
    """`$DLSUITE_DATA_DIR` as a Path, or None when it is unset or empty."""
    value = os.environ.get(ENVIRONMENT_VARIABLE)
    return Path(value) if value else None


def candidates(name, data_dir=None, subfolders=(), system_dirs=()):
    """The folders `find_dataset` tries, in order, and a phrase saying where they came from."""
    if data_dir:
        roots, where = [Path(data_dir), Path(data_dir) / name], f"--data-dir {data_dir}"
    elif environment_root() is not None:
        roots, where = [environment_root() / name], f"{ENVIRONMENT_VARIABLE}={environment_root()}"
    else:
        roots, where = [], f"no --data-dir and {ENVIRONMENT_VARIABLE} unset"
    folders = [folder for root in roots for folder in (root, *(root / sub for sub in subfolders))]
    if not data_dir:
        folders.extend(Path(folder) for folder in system_dirs)
    return list(dict.fromkeys(folders)), where


def find_dataset(name, data_dir=None, *, looks_right, expected, subfolders=(), system_dirs=(), fallback=None):
    """The first folder holding dataset `name` (see the module docstring), or `fallback`.

    looks_right: `folder -> bool`, cheap (file names only; the app validates contents afterwards).
    expected: what the folder must hold, for the error (`"recordings/*.wav (FSDD)"`).
    """
    if data_dir and not Path(data_dir).is_dir():
        raise DataError(
            f"Data directory not found. Received: --data-dir {data_dir}. Expected a folder holding {expected} "
            f"(or a folder holding {name}/). Fix the path."
        )
    folders, where = candidates(name, data_dir, subfolders, system_dirs)
    for folder in folders:
        if folder.is_dir() and looks_right(folder):
            return folder
    if fallback is not None and not data_dir:
        return fallback
    looked = ", ".join(str(folder) for folder in folders) or "nowhere"
    raise DataError(
        f"No {name} data found. Received: {where} (looked in {looked}). Expected {expected}. "
        f"Fix: --data-dir <the folder holding it>, or set {ENVIRONMENT_VARIABLE} to a folder with {name}/ in it."
    )
