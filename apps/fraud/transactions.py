"""Reading transactions: the handbook's daily pickles (their SHA-256 pinned in the repository), or the user's CSV /
Parquet files.

Layouts of a data folder (the first found wins):
- "pickle": `data/YYYY-MM-DD.pkl` (or `YYYY-MM-DD.pkl` at the top), the Fraud Detection Handbook's files, as in
  `$DLSUITE_DATA_DIR/fraud_handbook`. Unpickling runs code chosen by whoever wrote the file, so each file's bytes
  are hashed and compared with the digest pinned for that day in `handbook_sums.py` first; any other pickle
  (changed, or not one of the handbook's 68 days) is refused before it is opened, whatever a `SHA256SUMS` in the
  folder says. The checked bytes are the ones unpickled (no second read).
- "csv" / "parquet": any `*.csv` / `*.parquet` files at the top or in `data/`, holding the columns COLUMNS: how a
  user's own transactions come.

Every reader returns one pandas DataFrame with COLUMNS, sorted by time, `TX_DATETIME` as datetime64.
"""

import datetime
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from apps.fraud.handbook_sums import HANDBOOK_SHA256
from shared.datasets import find_dataset
from shared.errors import DataError

DATASET = "fraud_handbook"
COLUMNS = ("TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD")
LAYOUTS = {"pickle": "*.pkl", "csv": "*.csv", "parquet": "*.parquet"}
EXPECTED = (f"the handbook's daily pickles (data/YYYY-MM-DD.pkl) or CSV / Parquet files with the columns "
            f"{', '.join(COLUMNS)}")
OWN_DATA = f"Convert your own transactions to CSV or Parquet with the columns {', '.join(COLUMNS)}."


# === Finding the files ===


def layout_of(folder):
    """`(layout, files)` of a folder (itself and its `data/`), or None when it holds no transaction files."""
    for layout, pattern in LAYOUTS.items():
        files = sorted([*folder.glob(pattern), *(folder / "data").glob(pattern)])
        if files:
            return layout, files
    return None


def resolve_folder(data_dir=None):
    """`(folder, layout, files)`: the folder `shared.datasets.find_dataset` finds (`--data-dir`, or
    `$DLSUITE_DATA_DIR/fraud_handbook`) and its data files."""
    folder = find_dataset(DATASET, data_dir, looks_right=lambda candidate: layout_of(candidate) is not None,
                          expected=EXPECTED)
    return (folder, *layout_of(folder))


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


# === Pickles: verified against the pinned digests, then opened ===


def verified_bytes(path):
    """The file's bytes, if their SHA-256 is the one pinned for the handbook's file of that name; DataError
    otherwise (never unpickled)."""
    path = Path(path)
    content = path.read_bytes()  # hashed and unpickled from the same bytes
    actual, expected = hashlib.sha256(content).hexdigest(), HANDBOOK_SHA256.get(path.name)
    if expected is None:
        raise DataError(f"Refusing to unpickle {path}: it is not one of the Fraud Detection Handbook's files. "
                        f"Received: a pickle named {path.name}. Expected only the handbook's 68 daily pickles "
                        "(2018-06-08.pkl ... 2018-08-14.pkl, SHA-256 pinned in apps/fraud/handbook_sums.py): unpickling "
                        "runs code. "
                        f"Fix: {OWN_DATA}")
    if actual != expected:
        raise DataError(f"Checksum mismatch for {path}: refusing to unpickle it (unpickling runs code). Received: "
                        f"sha256={actual}. Expected: {expected}, the digest of the handbook's {path.name} pinned in "
                        "apps/fraud/handbook_sums.py (a SHA256SUMS in the data folder is not trusted: it proves only "
                        f"that the folder agrees with itself). Fix: restore the handbook's file. {OWN_DATA}")
    return content


def check_pickles(files):
    """Verify every file against its pinned digest (cheap: hashing, no unpickling)."""
    for path in files:
        verified_bytes(path)


def read_pickles(files):
    frames = [pd.read_pickle(io.BytesIO(verified_bytes(path))) for path in files]
    return standardize(pd.concat(frames, ignore_index=True), files[0].parent)


# === CSV and Parquet ===


def read_table(path):
    """One CSV or Parquet file with COLUMNS, checked: a missing column or a timestamp that is not a date is named."""
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (pyarrow.ArrowException, pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        raise DataError(f"Cannot read {path} as {kind}. Received: {type(error).__name__}: "
                        f"{str(error).splitlines()[0][:200] if str(error) else ''}. Expected a {kind} file with the "
                        f"columns {', '.join(COLUMNS)}. Fix: rewrite the file, or remove it from the folder.") from None
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
    """Cheap checks before a run: the pinned checksums of the pickles in the period, or every table read and
    checked. Returns `(first day, last day)` of the transactions the folder holds, or None when it holds none."""
    if layout == "pickle":
        selected = select_days(files, first_day, last_day)
        if selected:
            check_pickles(selected)
        days = [day_of(path) for path in files]
        return min(days), max(days)
    times = [read_table(path)["TX_DATETIME"] for path in files]
    times = [column for column in times if len(column)]
    if not times:
        return None
    return min(column.min() for column in times).date(), max(column.max() for column in times).date()


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
