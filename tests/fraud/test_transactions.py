"""The readers: a pickle is opened only when its SHA-256 is the one pinned in the repository for that handbook
file (a SHA256SUMS in the data folder is not trusted); CSV and Parquet read the same stream; a missing column, a
timestamp that is not a date or a file that is not Parquet is named in the error."""

import hashlib
import pickle
import re

import pandas as pd
import pytest

from apps.fraud import transactions
from shared.errors import DataError
from tests.conftest import run_cli
from tests.fraud.tiny_data import make_csv_folder, make_parquet_folder, stream

PERIOD = (pd.Timestamp("2018-07-20").date(), pd.Timestamp("2018-07-30").date())


class CreatesMarker:
    """Unpickling this object calls `open(marker, "w")`: the file appears iff the pickle was opened."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _planted_folder(folder, marker, name="2018-07-26.pkl"):
    """A folder whose only pickle runs code when unpickled, with a SHA256SUMS that lists it correctly."""
    (folder / "data").mkdir(parents=True)
    content = pickle.dumps(CreatesMarker(marker), protocol=4)
    (folder / "data" / name).write_bytes(content)
    (folder / "SHA256SUMS").write_text(f"{hashlib.sha256(content).hexdigest()}  data/{name}\n")
    return folder


@pytest.mark.parametrize(("name", "message"), [
    ("2018-07-26.pkl", r"Checksum mismatch for .*2018-07-26\.pkl: refusing to unpickle it \(unpickling runs code\)\. "
                       r"Received: sha256=[0-9a-f]{64}\. Expected: [0-9a-f]{64}, the digest of the handbook's "
                       r"2018-07-26\.pkl pinned in apps/fraud/handbook_sums\.py \(a SHA256SUMS in the data folder is "
                       r"not trusted.*Convert your own transactions to CSV or Parquet"),
    ("2018-08-15.pkl", r"Refusing to unpickle .*2018-08-15\.pkl: it is not one of the Fraud Detection Handbook's "
                       r"files\..*Convert your own transactions to CSV or Parquet"),
])
def test_a_planted_pickle_with_a_matching_sha256sums_is_refused_before_it_is_opened(tmp_path, name, message):
    marker = tmp_path / "unpickled.marker"
    folder = _planted_folder(tmp_path / "planted", marker, name)
    _found, layout, files = transactions.resolve_folder(str(folder))
    with pytest.raises(DataError, match=message):
        transactions.load(layout, files, PERIOD[0], pd.Timestamp("2018-08-15").date())
    assert not marker.exists()
    if name != "2018-07-26.pkl":
        return  # the CLI once (it starts TensorFlow): the changed handbook file, as a planted attack would be named
    result = run_cli("train", "fraud", "--preset", "smoke", "--data-dir", folder, "--set", "test_end=2018-08-15",
                     "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--export-dir", tmp_path / "exports")
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(message, " ".join(result.stderr.split())), result.stderr
    assert not marker.exists() and not (tmp_path / "exports").exists()


def test_the_handbooks_pickles_match_their_pinned_digests_and_read_as_their_csv_and_parquet(tmp_path, data_root):
    folder, layout, files = transactions.resolve_folder(str(data_root / "fraud_handbook"))
    assert layout == "pickle" and len(files) == 68
    transactions.check(folder, layout, files, *PERIOD)  # every day of the period matches its pinned digest
    from_pickles = transactions.load(layout, files, *PERIOD)
    assert list(from_pickles.columns) == list(transactions.COLUMNS) and len(from_pickles) > 50_000
    for make in (make_csv_folder, make_parquet_folder):
        _found, other_layout, other_files = transactions.resolve_folder(str(make(tmp_path / make.__name__,
                                                                                  from_pickles)))
        pd.testing.assert_frame_equal(from_pickles, transactions.load(other_layout, other_files, *PERIOD),
                                      check_column_type=False)  # the pickles' column names are object, CSV's str


def test_a_garbage_parquet_file_is_a_data_error_naming_it(tmp_path):
    folder = tmp_path / "garbage"
    folder.mkdir()
    (folder / "tx.parquet").write_bytes(b"PAR1 this is not a parquet file at all")
    found, layout, files = transactions.resolve_folder(str(folder))
    with pytest.raises(DataError, match=r"Cannot read .*tx\.parquet as Parquet\. Received: ArrowInvalid: .*Expected a "
                                        r"Parquet file with the columns TX_DATETIME"):
        transactions.check(found, layout, files, *PERIOD)  # a DataError: the CLI's exit code 2, no traceback


def test_csv_and_parquet_read_the_same_transactions(tmp_path):
    frame = stream()
    loaded = []
    for make in (make_csv_folder, make_parquet_folder):
        _found, layout, files = transactions.resolve_folder(str(make(tmp_path / make.__name__, frame)))
        loaded.append(transactions.load(layout, files, *PERIOD))
    assert list(loaded[0].columns) == list(transactions.COLUMNS) and len(loaded[0]) == 11 * 24
    pd.testing.assert_frame_equal(loaded[0], loaded[1])


@pytest.mark.parametrize(("change", "message"), [
    (lambda frame: frame.drop(columns="CUSTOMER_ID"),
     r"Missing column CUSTOMER_ID in .*transactions\.csv\. Received: columns TRANSACTION_ID, TX_DATETIME, TERMINAL_ID"),
    (lambda frame: frame.assign(TX_DATETIME=frame["TX_DATETIME"].astype(str).where(frame.index != 3, "31/02/2018")),
     r"Invalid TX_DATETIME in .*transactions\.csv, line 5\. Received: TX_DATETIME='31/02/2018'\. Expected a date and "
     r"time such as 2018-08-08 12:30:00 in column TX_DATETIME"),
    (lambda frame: frame.assign(TX_DATETIME=frame["TX_TIME_SECONDS"]),
     r"Invalid TX_DATETIME in .*transactions\.csv, line 2\. Received: TX_DATETIME=\d+\. Expected a date and time"),
    (lambda frame: frame.assign(TX_FRAUD=frame["TX_FRAUD"].where(frame.index != 7, 2)),
     r"Invalid TX_FRAUD in .*transactions\.csv, line 9\. Received: TX_FRAUD=2\. Expected 0 \(genuine\) or 1"),
    (lambda frame: frame.assign(TX_AMOUNT=frame["TX_AMOUNT"].where(frame.index != 0, -5.0)),
     r"Invalid TX_AMOUNT in .*transactions\.csv, line 2\. Received: TX_AMOUNT=-5\.0\. Expected a finite amount"),
])
def test_a_bad_csv_gets_an_error_naming_the_column_and_line(tmp_path, change, message):
    folder = make_csv_folder(tmp_path / "csv", change(stream().reset_index(drop=True)))
    _found, layout, files = transactions.resolve_folder(str(folder))
    with pytest.raises(DataError, match=message):
        transactions.load(layout, files, *PERIOD)
