"""The periods of a run, the transactions with their features, and what fit and evaluate read.

The handbook's protocol (chapter 5): the model trains on `train_start ... train_end` and is tested on
`test_start ... test_end`, at least `delay_days` later. Validation is prequential: fold k trains on the same
number of days ending `delay_days` before its validation period, which is the `validation_days` starting
k * validation_days before `train_start`. With the defaults (7 days each) fold 0 trains on 07-11 ... 07-17 and
is validated on 07-25 ... 07-31: the test situation moved two weeks back, never a random split (a random split
puts the same compromised cards and terminals, and days after the training ones, on both sides).
"""

import dataclasses
import datetime

import numpy as np
import pandas as pd
import tensorflow as tf

from apps.fraud import features, transactions
from shared import data as shared_data
from shared.app import Data, DatasetRecord
from shared.errors import DataError

HISTORY_DAYS = max(features.WINDOWS)  # the longest window a feature reads, before the delay


@dataclasses.dataclass
class Window:
    """The transactions of one period: serving inputs, labels, and the customer and day of each (for CP@k)."""

    name: str
    first_day: datetime.date
    last_day: datetime.date
    inputs: dict
    labels: np.ndarray
    customers: np.ndarray
    days: np.ndarray

    def __len__(self):
        return len(self.labels)

    def take(self, rows):
        return dataclasses.replace(self, inputs={key: value[rows] for key, value in self.inputs.items()},
                                   labels=self.labels[rows], customers=self.customers[rows], days=self.days[rows])


@dataclasses.dataclass
class FraudData(Data):
    """`Data` plus the prequential folds: `[(training Window, validation Window)]`. `validation_scores` is filled
    by `fit` (the folds' models scoring their validation periods) for the threshold `after_fit` picks."""

    folds: list = dataclasses.field(default_factory=list)
    train_window: Window = None
    recent: Window = None  # the latest transactions before the test (the delay period): the threshold's scale
    validation_scores: list = dataclasses.field(default_factory=list)


def _days(count):
    return datetime.timedelta(days=count)


def periods(config):
    """`{"train": (first, last), "test": ..., "fold<k>_train": ..., "fold<k>_validation": ...}` in dates."""
    train_start, train_end = config.date("train_start"), config.date("train_end")
    length = (train_end - train_start).days + 1
    test_start = config.date("test_start")
    result = {"train": (train_start, train_end), "test": (test_start, config.date("test_end"))}
    if (test_start - train_end).days > 1:  # the delay: transactions seen, labels not yet known
        result["before_test"] = (train_end + _days(1), test_start - _days(1))
    for fold in range(config.validation_folds):
        validation_start = train_start - _days(fold * config.validation_days)
        fit_end = validation_start - _days(config.delay_days + 1)
        result[f"fold{fold}_train"] = (fit_end - _days(length - 1), fit_end)
        result[f"fold{fold}_validation"] = (validation_start, validation_start + _days(config.validation_days - 1))
    return result


def needed_days(config):
    """The first and last day whose transactions a run reads: the features look 30 + delay days back."""
    spans = periods(config).values()
    first = min(start for start, _end in spans) - _days(HISTORY_DAYS + config.delay_days)
    return first, max(end for _start, end in spans)


def check(config, data_dir):
    """Resolve the folder, verify what the run reads (checksums, columns, dates); the test period must have data."""
    folder, layout, files = transactions.resolve_folder(data_dir)
    first, last = needed_days(config)
    transactions.check(folder, layout, files, first, last)
    test_start, test_end = periods(config)["test"]
    if layout == "pickle" and not transactions.select_days(files, test_start, test_end):
        available = [transactions.day_of(path) for path in files]
        raise DataError(f"No transactions in the test period. Received: test_start={test_start}, test_end={test_end};"
                        f" {folder} holds {min(available)} ... {max(available)}. Expected test dates inside the data:"
                        " fix them with --set test_start=YYYY-MM-DD --set test_end=YYYY-MM-DD.")
    return folder, layout, files


def load(config, layout, files):
    """Read the transactions the run needs, compute their features, and cut the periods into Windows."""
    first, last = needed_days(config)
    frame = transactions.load(layout, files, first, last)
    aggregated = features.aggregates(frame, config.delay_days)
    length = config.sequence_length if config.model == "sequence" else 0
    inputs = features.serving_inputs(frame, aggregated, length)
    labels = frame["TX_FRAUD"].to_numpy(np.int64)
    customers = frame["CUSTOMER_ID"].to_numpy(np.int64)
    days = frame["TX_DATETIME"].dt.normalize().to_numpy()
    windows, spans = {}, periods(config)
    for name, (start, end) in spans.items():
        rows = np.flatnonzero((days >= np.datetime64(start)) & (days <= np.datetime64(end)))
        if config.drop_known_compromised and (name == "test" or "validation" in name):
            rows = rows[~known_compromised(days, customers, labels, rows, known_period(config, start))]
        windows[name] = Window(name, start, end, {key: value[rows] for key, value in inputs.items()}, labels[rows],
                               customers[rows], days[rows])
    if not len(windows["test"]):
        raise DataError(f"No transactions in the test period. Received: test_start={config.test_start}, test_end="
                        f"{config.test_end}. Expected test dates inside the data; fix them with --set.")
    return windows


def known_period(config, start):
    """The labelled days before a test or validation period starting on `start`: as many as the training period
    has, ending a delay before `start` (the `known_from` of `known_compromised`)."""
    train_start, train_end = periods(config)["train"]
    length = (train_end - train_start).days + 1
    return start - _days(config.delay_days + length), start - _days(config.delay_days + 1)


def known_compromised(days, customers, labels, rows, known_from):
    """Which of `rows` (a test period) belong to cards already known compromised that day: a fraud of the card
    in `known_from` (the training period's days before it), or later but a delay earlier (`days` and the
    others: the whole frame).

    The handbook's `get_train_test_set` drops these transactions from its test sets: the bank blocks such
    cards, so scoring them measures nothing. Test day i learns the labels of the training period's last day
    + i (the same delay as between the training period and the test)."""
    train_start, train_end = (np.datetime64(day) for day in known_from)
    first_test_day = days[rows].min() if len(rows) else np.datetime64(train_end)
    known = np.zeros(len(rows), dtype=bool)
    for day in np.unique(days[rows]):
        cutoff = np.datetime64(train_end) + (day - first_test_day)
        frauds = (labels == 1) & (days >= train_start) & (days <= cutoff)
        on_day = days[rows] == day
        known[on_day] = np.isin(customers[rows][on_day], customers[frauds])
    return known


def dataset(window, config, *, shuffle=False, genuine_only=False):
    """Batches of `(inputs, labels)` (supervised) or `(inputs, zeros)` (autoencoders: the loss is the model's score)."""
    if genuine_only:
        window = window.take(np.flatnonzero(window.labels == 0))
    targets = np.zeros(len(window), np.float32) if config.model in ("autoencoder", "vae") else \
        window.labels.astype(np.float32)
    if config.ensemble_size > 1 and config.model in ("supervised", "sequence"):
        targets = np.repeat(targets[:, None], config.ensemble_size, axis=1)  # one target per head
    slices = tf.data.Dataset.from_tensor_slices((window.inputs, targets))
    return shared_data.pipeline(slices, config.batch_size, shuffle=shuffle, seed=config.seed)


def records(windows, source_uri):
    return [DatasetRecord("fraud-transactions", source_uri, name, len(window),
                          shared_data.fingerprint_arrays(window.inputs["tx_datetime"].astype(bytes),
                                                         window.inputs["tx_amount"], window.labels))
            for name, window in windows.items()]


def build(config, source):
    """FraudData: the training period (None when the data has none: evaluating another window), the folds, the test."""
    _folder, layout, files = transactions.resolve_folder(str(source.path))
    windows = load(config, layout, files)
    unsupervised = config.model in ("autoencoder", "vae")
    folds = [(windows[f"fold{fold}_train"], windows[f"fold{fold}_validation"]) for fold in range(config.validation_folds)
             if len(windows[f"fold{fold}_train"]) and len(windows[f"fold{fold}_validation"])]
    train = windows["train"]
    info = {"model": config.model, "features": features.TransactionFeatures.NAMES, "aggregates": features.AGGREGATES,
            "periods": {name: [str(start), str(end)] for name, (start, end) in periods(config).items()},
            "train_transactions": len(train), "train_fraud_rate": float(train.labels.mean()) if len(train) else 0.0,
            "test_fraud_rate": float(windows["test"].labels.mean())}
    return FraudData(
        train=dataset(train, config, shuffle=True, genuine_only=unsupervised) if len(train) else None,
        validation=dataset(folds[0][1], config, genuine_only=unsupervised) if folds else None,
        test=windows["test"], records=records(windows, source.uri), info=info, folds=folds, train_window=train,
        recent=windows["before_test"] if len(windows.get("before_test", ())) else train)


def frame_window(window):
    """A Window as a DataFrame of customer, day, label (the CP@k computation's input)."""
    return pd.DataFrame({"CUSTOMER_ID": window.customers, "TX_DAY": window.days, "TX_FRAUD": window.labels})
