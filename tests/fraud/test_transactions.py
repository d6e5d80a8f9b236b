"""The readers: a pickle is opened only once its SHA-256 matches SHA256SUMS; CSV and Parquet read the same
stream; a missing column or a timestamp that is not a date is named in the error."""

import pickle

import pandas as pd
import pytest

from apps.fraud import transactions
from shared.errors import DataError
from tests.fraud.tiny_data import make_csv_folder, make_handbook_folder, make_parquet_folder, stream, write_sums

PERIOD = (pd.Timestamp("2018-07-20").date(), pd.Timestamp("2018-07-30").date())


class CreatesMarker:
    """Unpickling this object calls `open(marker, "w")`: the file appears iff the pickle was opened."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _plant(path, marker):
    path.write_bytes(pickle.dumps(CreatesMarker(marker), protocol=4))


def test_a_pickle_whose_checksum_does_not_match_is_refused_before_it_is_opened(tmp_path):
    folder = make_handbook_folder(tmp_path / "handbook")
    marker = tmp_path / "unpickled.marker"
    _plant(folder / "data" / "2018-07-26.pkl", marker)
    found, layout, files = transactions.resolve_folder(str(folder))
    for read in (lambda: transactions.check(found, layout, files, *PERIOD),
                 lambda: transactions.load(layout, files, *PERIOD)):
        with pytest.raises(DataError, match=r"Checksum mismatch for .*2018-07-26\.pkl: refusing to unpickle it\. "
                                            r"Received: sha256=[0-9a-f]{64}\. Expected: [0-9a-f]{64}"):
            read()
        assert not marker.exists()
    # The planted file is a real threat: listed in SHA256SUMS, the same reader opens it and the marker appears.
    write_sums(folder)
    with pytest.raises(Exception):
        transactions.load(layout, files, *PERIOD)
    assert marker.exists()


def test_an_unlisted_pickle_is_refused_before_it_is_opened(tmp_path):
    folder = make_handbook_folder(tmp_path / "handbook")
    marker = tmp_path / "unpickled.marker"
    _plant(folder / "data" / "2018-08-15.pkl", marker)
    _found, layout, files = transactions.resolve_folder(str(folder))
    with pytest.raises(DataError, match=r"Refusing to open pickle .*2018-08-15\.pkl: it is not listed in SHA256SUMS"):
        transactions.load(layout, files, PERIOD[0], pd.Timestamp("2018-08-15").date())
    assert not marker.exists()


def test_pickles_csv_and_parquet_read_the_same_transactions(tmp_path):
    frame = stream()
    loaded = []
    for make in (make_handbook_folder, make_csv_folder, make_parquet_folder):
        _found, layout, files = transactions.resolve_folder(str(make(tmp_path / make.__name__, frame)))
        loaded.append(transactions.load(layout, files, *PERIOD))
    assert list(loaded[0].columns) == list(transactions.COLUMNS) and len(loaded[0]) == 11 * 24
    for other in loaded[1:]:
        pd.testing.assert_frame_equal(loaded[0], other)


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
