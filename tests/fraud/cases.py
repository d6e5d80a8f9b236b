"""The fraud app's harness cases (`tests/test_tasks.py`): one per model, on a tiny stream as Parquet (a user's
own transactions come as CSV or Parquet: only the handbook's pinned pickles are unpickled), and the inputs
refused before a run opens (`shared.errors.DataError` / `ConfigError`, in the Keras form)."""

import pickle

from shared.errors import ConfigError, DataError
from tests.fraud.tiny_data import make_csv_folder, make_parquet_folder, stream
from tests.harness import BadInput, TaskCase

MODELS = ("supervised", "autoencoder", "vae", "sequence")


def _own_pickles(folder):
    """The tiny stream as daily pickles named like the handbook's: not the handbook's bytes, so refused."""
    frame = stream()
    pickles = folder.parent / f"{folder.name}-pickles"
    (pickles / "data").mkdir(parents=True)
    for day, transactions in frame.groupby(frame["TX_DATETIME"].dt.date):
        transactions.to_pickle(pickles / "data" / f"{day}.pkl", protocol=4)
    return pickles


def _unknown_pickle(folder):
    (folder / "data").mkdir()
    (folder / "data" / "2018-08-15.pkl").write_bytes(pickle.dumps({"not": "the handbook's"}))
    return folder / "data"


def _short_history(folder):
    frame = stream().reset_index(drop=True)
    return make_csv_folder(folder.parent / f"{folder.name}-short", frame[frame["TX_DATETIME"] >= "2018-07-20"])


def _csv(change):
    def break_data(folder):
        frame = change(stream().reset_index(drop=True))
        return make_csv_folder(folder.parent / f"{folder.name}-csv", frame)

    return break_data


def _non_date(frame):
    frame["TX_DATETIME"] = frame["TX_DATETIME"].astype(str)
    frame.loc[5, "TX_DATETIME"] = "yesterday"
    return frame


BAD_INPUTS = (
    BadInput(DataError, r"Data directory not found\. Received: --data-dir .*missing",
             break_data=lambda folder: folder / "missing"),
    BadInput(DataError, r"No fraud_handbook data found\. Received: --data-dir .*empty",
             break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
    BadInput(DataError, r"Checksum mismatch for .*2018-07-01\.pkl: refusing to unpickle it \(unpickling runs code\)\. "
                        r"Received: sha256=[0-9a-f]{64}\. Expected: [0-9a-f]{64}, the digest of the handbook's",
             break_data=_own_pickles),
    BadInput(DataError, r"Refusing to unpickle .*2018-08-15\.pkl: it is not one of the Fraud Detection Handbook's "
                        r"files\..*Convert your own transactions to CSV or Parquet",
             overrides=("test_end=2018-08-15",), break_data=_unknown_pickle),
    BadInput(DataError, r"Not enough history before the test period in .*-short\. Received: transactions from "
                        r"2018-07-20, test_start=2018-08-08\. Expected transactions from 2018-07-02 on",
             break_data=_short_history),
    BadInput(DataError, r"Missing column TX_AMOUNT in .*transactions\.csv\. Received: columns TRANSACTION_ID",
             break_data=_csv(lambda frame: frame.drop(columns="TX_AMOUNT"))),
    BadInput(DataError, r"Invalid TX_DATETIME in .*transactions\.csv, line 7\. Received: TX_DATETIME='yesterday'\. "
                        r"Expected a date and time", break_data=_csv(_non_date)),
    BadInput(DataError, r"No transactions in the test period\. Received: test_start=2018-09-01",
             overrides=("test_start=2018-09-01", "test_end=2018-09-07")),
    BadInput(ConfigError, r"Invalid value for config key test_start\. Received: test_start='2018-13-01'",
             overrides=("test_start=2018-13-01",)),
    BadInput(ConfigError, r"Invalid period\. Received: train_end=2018-07-17, test_start=2018-07-16",
             overrides=("test_start=2018-07-16",)),
    BadInput(ConfigError, r"Invalid period\. Received: train_end=2018-07-17, delay_days=7, validation_days=7 "
                        r"\(validation until 2018-07-31\), test_start=2018-08-05\. Expected test_start after "
                        r"2018-08-07", overrides=("test_start=2018-08-05",)),
    BadInput(ConfigError, r"Received: model='lstm'\. Expected one of: supervised, autoencoder, vae, sequence",
             overrides=("model=lstm",)),
    BadInput(ConfigError, r"Received: feature_bins=1\. Expected 0 \(no bins\) or at least 2",
             overrides=("feature_bins=1",)),
)


def detection_case(model):
    return TaskCase(
        make_data=make_parquet_folder,
        overrides=(f"model={model}", "epochs=1", "batch_size=64", "hidden_units=8", "latent_dim=2",
                   "sequence_length=3", "recurrent_units=4", "alerts_per_day=2",
                   *(("feature_bins=4",) if model == "sequence" else ())),  # more bins than the default 2
        metrics=("test_auc_roc", "test_average_precision", "test_card_precision_top_100",
                 "test_precision_at_threshold", "test_recall_at_threshold"),
        bad_inputs=BAD_INPUTS if model == "supervised" else (),
    )
