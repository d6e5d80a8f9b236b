"""Reading transactions: the handbook's checksummed daily pickles, or the user's CSV / Parquet files.

Layouts of a data folder (the first found wins):
- "pickle": `data/YYYY-MM-DD.pkl` (or `YYYY-MM-DD.pkl` at the top) with a `SHA256SUMS` beside the folder or the
  files, as in `shared/datasets/fraud_handbook`. Unpickling runs code chosen by whoever wrote the file, so each
  file's bytes are hashed and compared with SHA256SUMS first; a pickle that is not listed or does not match is
  refused before it is opened. The checked bytes are the ones unpickled (no second read).
- "csv" / "parquet": any `*.csv` / `*.parquet` files at the top or in `data/`, holding the columns COLUMNS.

Every reader returns one pandas DataFrame with COLUMNS, sorted by time, `TX_DATETIME` as datetime64.
"""

import datetime
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from shared import checksums
from shared.errors import DataError

DATASET = "fraud_handbook"
COLUMNS = ("TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD")
SUMS = "SHA256SUMS"
LAYOUTS = {"pickle": "*.pkl", "csv": "*.csv", "parquet": "*.parquet"}
LAYOUT_HELP = ("Expected the handbook's layout (data/YYYY-MM-DD.pkl with SHA256SUMS) or CSV / Parquet files with the "
               f"columns {', '.join(COLUMNS)}.")


# === Finding the files ===


def resolve_folder(data_dir=None):
    """`(folder, layout, files)`: `--data-dir` (or `$DLSUITE_DATA_DIR/fraud_handbook`) and its data files."""
    if data_dir:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(f"Data directory not found. Received: --data-dir {data_dir}. {LAYOUT_HELP} Fix the path.")
        candidates, where = [root, root / DATASET], f"--data-dir {data_dir}"
    else:
        if not os.environ.get("DLSUITE_DATA_DIR"):
            raise DataError("No transaction data. Received: no --data-dir and DLSUITE_DATA_DIR unset. Expected "
                            f"--data-dir DIR or DLSUITE_DATA_DIR with {DATASET}/ in it. {LAYOUT_HELP}")
        candidates = [Path(os.environ["DLSUITE_DATA_DIR"]) / DATASET]
        where = f"DLSUITE_DATA_DIR={os.environ['DLSUITE_DATA_DIR']}"
    for candidate in candidates:
        for layout, pattern in LAYOUTS.items():
            files = sorted([*candidate.glob(pattern), *(candidate / "data").glob(pattern)])
            if files:
                return candidate, layout, files
    raise DataError(f"No transaction files found. Received: {where} (looked in "
                    f"{', '.join(str(path) for path in candidates)} and their data/). {LAYOUT_HELP}")


def day_of(path):
    """The day a handbook pickle holds, from its name `YYYY-MM-DD.pkl`."""
    try:
        return datetime.date.fromisoformat(path.stem)
    except ValueError:
        raise DataError(f"Unexpected pickle name {path}. Received: {path.name}. Expected YYYY-MM-DD.pkl, one file "
                        "per day as the handbook writes them.") from None


def select_days(files, first_day, last_day):
    """The daily pickles from `first_day` to `last_day` inclusive (the handbook's selection by file name)."""
    return [path for path in files if first_day <= day_of(path) <= last_day]


# === Pickles: verified, then opened ===


def read_sums(folder, files):
    """`{absolute path: sha256}` from the SHA256SUMS beside the files or in their parent folder."""
    for place in {files[0].parent, files[0].parent.parent}:
        if (place / SUMS).is_file():
            return checksums.read_sums(place / SUMS)
    raise DataError(f"No {SUMS} beside the pickles. Received: pickles in {files[0].parent} and no {SUMS} there or in "
                    f"{files[0].parent.parent}. Expected the `sha256sum` list of the files: pickles are only opened "
                    "once their checksum matches, because unpickling runs code. Use CSV or Parquet for other data.")


def verified_bytes(path, sums):
    """The file's bytes, if their SHA-256 is the one SHA256SUMS lists for it; DataError otherwise (never unpickled)."""
    expected = sums.get(Path(path).resolve())
    if expected is None:
        raise DataError(f"Refusing to open pickle {path}: it is not listed in {SUMS}. Received: an unlisted .pkl file. "
                        "Expected only the handbook's checksummed pickles: unpickling runs code. Convert your own "
                        "data to CSV or Parquet with the columns " + ", ".join(COLUMNS) + ".")
    content = Path(path).read_bytes()  # hashed and unpickled from the same bytes
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise checksums.mismatch_error(path, actual, expected, SUMS, ": refusing to unpickle it")
    return content


def check_pickles(files):
    """Verify every file's checksum (cheap: hashing, no unpickling)."""
    sums = read_sums(files[0].parent, files)
    for path in files:
        verified_bytes(path, sums)


def read_pickles(files):
    sums = read_sums(files[0].parent, files)
    frames = [pd.read_pickle(io.BytesIO(verified_bytes(path, sums))) for path in files]
    return standardize(pd.concat(frames, ignore_index=True), files[0].parent)


# === CSV and Parquet ===


def read_table(path):
    """One CSV or Parquet file with COLUMNS, checked: a missing column or a timestamp that is not a date is named."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return standardize(frame, path)


def standardize(frame, where):
    """COLUMNS only, typed, sorted by time; DataError naming the file, column and row of the first bad value."""
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(f"Missing column {missing[0]} in {where}. Received: columns {', '.join(map(str, frame.columns))}."
                        f" Expected the columns {', '.join(COLUMNS)} (the handbook's names).")
    frame = frame.loc[:, list(COLUMNS)].copy()
    column = frame["TX_DATETIME"]
    if pd.api.types.is_datetime64_any_dtype(column):
        timestamps = column.dt.tz_localize(None) if getattr(column.dt, "tz", None) else column
    elif pd.api.types.is_numeric_dtype(column):  # seconds or days since some epoch: not a date
        timestamps = pd.Series(pd.NaT, index=frame.index)
    else:
        timestamps = pd.to_datetime(column.astype(str), errors="coerce", format="mixed")
    _first_bad(frame, timestamps.isna(), where, "TX_DATETIME", "a date and time such as 2018-08-08 12:30:00")
    frame["TX_DATETIME"] = timestamps.astype("datetime64[ns]")
    for column in ("CUSTOMER_ID", "TERMINAL_ID", "TX_FRAUD"):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        _first_bad(frame, numbers.isna() | (numbers != np.round(numbers)), where, column, "an integer")
        frame[column] = numbers.astype(np.int64)
    _first_bad(frame, ~frame["TX_FRAUD"].isin([0, 1]), where, "TX_FRAUD", "0 (genuine) or 1 (fraud)")
    amounts = pd.to_numeric(frame["TX_AMOUNT"], errors="coerce")
    _first_bad(frame, ~np.isfinite(amounts) | (amounts < 0), where, "TX_AMOUNT", "a finite amount >= 0")
    frame["TX_AMOUNT"] = amounts.astype(np.float64)
    return frame.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)


def _first_bad(frame, bad, where, column, expected):
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        line = f", line {row + 2}" if str(where).endswith(".csv") else f", row {row}"
        value = frame[column].iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise DataError(f"Invalid {column} in {where}{line}. Received: {column}={value!r}. "
                        f"Expected {expected} in column {column}.")


# === One entry point ===


def check(folder, layout, files, first_day, last_day):
    """Cheap checks before a run: checksums of the pickles in the period, or every table read and checked."""
    if layout == "pickle":
        selected = select_days(files, first_day, last_day)
        if selected:
            check_pickles(selected)
        return
    for path in files:
        read_table(path)


def load(layout, files, first_day, last_day):
    """The transactions from `first_day` to `last_day` inclusive (pickles outside the period are not opened)."""
    if layout == "pickle":
        selected = select_days(files, first_day, last_day)
        frame = read_pickles(selected) if selected else standardize(pd.DataFrame(columns=list(COLUMNS)), "no files")
    else:
        frame = pd.concat([read_table(path) for path in files], ignore_index=True)
        frame = frame.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)
    days = frame["TX_DATETIME"].dt.normalize()
    keep = (days >= pd.Timestamp(first_day)) & (days <= pd.Timestamp(last_day))
    return frame[keep].reset_index(drop=True)
