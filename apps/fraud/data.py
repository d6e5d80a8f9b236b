"""The periods of a run, the transactions with their features, and what fit and evaluate read.

The handbook's protocol (chapter 5): the model trains on `train_start ... train_end`, is validated on the
`validation_days` that start `delay_days` later (prequential validation: the test situation moved back, never a
random split, which puts the same compromised cards and terminals, and days after the training ones, on both
sides), and is tested on `test_start ... test_end`. With the defaults: train 07-11 ... 07-17, validation
07-25 ... 07-31, test 08-08 ... 08-14. Every feature reads `HISTORY_DAYS + delay_days` days back, so the data
must start that long before the test (`check`).
"""

import dataclasses
import datetime

import numpy as np
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
    """`Data` plus the periods' transactions as Windows (the training period's adapt the normalization; the
    validation period's are scored each epoch and choose the threshold)."""

    train_window: Window = None
    validation_window: Window = None


def _days(count):
    return datetime.timedelta(days=count)


def periods(config):
    """`{"train": (first, last), "validation": ..., "test": ...}` in dates."""
    return {"train": (config.date("train_start"), config.date("train_end")), "validation": config.validation_period(),
            "test": (config.date("test_start"), config.date("test_end"))}


def needed_days(config):
    """The first and last day whose transactions a run reads: the features look 30 + delay days back."""
    spans = periods(config).values()
    first = min(start for start, _end in spans) - _days(HISTORY_DAYS + config.delay_days)
    return first, max(end for _start, end in spans)


def check(config, data_dir):
    """Resolve the folder, verify what the run reads (checksums, columns, dates); the test period must have data."""
    folder, layout, files = transactions.resolve_folder(data_dir)
    first, last = needed_days(config)
    held = transactions.check(folder, layout, files, first, last)
    test_start, test_end = periods(config)["test"]
    if held is None or held[1] < test_start or held[0] > test_end:
        holds = f"{held[0]} ... {held[1]}" if held else "no transactions in the period a run reads"
        raise DataError(f"No transactions in the test period. Received: test_start={test_start}, test_end={test_end};"
                        f" {folder} holds {holds}. Expected test dates inside the data:"
                        " fix them with --set test_start=YYYY-MM-DD --set test_end=YYYY-MM-DD.")
    history_start = test_start - _days(HISTORY_DAYS + config.delay_days)
    if held[0] > history_start:
        raise DataError(
            f"Not enough history before the test period in {folder}. Received: transactions from {held[0]}, "
            f"test_start={test_start}. Expected transactions from {history_start} on: the features of a payment read "
            f"the card's last {HISTORY_DAYS} days and the terminal's {HISTORY_DAYS} days ending {config.delay_days} "
            f"days before it ({HISTORY_DAYS + config.delay_days} days), and the cards known compromised come from the "
            f"labels before the test. Fix: add the days {history_start} ... {held[0] - _days(1)} to the folder, or a "
            "later --set test_start.")
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
    windows = {}
    for name, (start, end) in periods(config).items():
        rows = period_rows(config, name, days, customers, labels)
        windows[name] = Window(name, start, end, {key: value[rows] for key, value in inputs.items()}, labels[rows],
                               customers[rows], days[rows])
    if not len(windows["test"]):
        raise DataError(f"No transactions in the test period. Received: test_start={config.test_start}, test_end="
                        f"{config.test_end}. Expected test dates inside the data; fix them with --set.")
    return windows


def period_rows(config, name, days, customers, labels):
    """The rows of the period `name` ("train", "validation", "test") in a frame's `days` (its transactions' days),
    `customers` and `labels`: its days, without the cards already known compromised in validation and test
    (`config.drop_known_compromised`)."""
    start, end = periods(config)[name]
    rows = np.flatnonzero((days >= np.datetime64(start)) & (days <= np.datetime64(end)))
    if config.drop_known_compromised and name in ("test", "validation"):
        rows = rows[~known_compromised(days, customers, labels, rows, known_period(config, start))]
    return rows


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
    """FraudData: the training and validation periods (None when the data has none: evaluating another window) and
    the test."""
    _folder, layout, files = transactions.resolve_folder(str(source.path))
    windows = load(config, layout, files)
    unsupervised = config.model in ("autoencoder", "vae")
    train, validation = windows["train"], windows["validation"]
    info = {"model": config.model, "features": features.TransactionFeatures.NAMES, "aggregates": features.AGGREGATES,
            "periods": {name: [str(start), str(end)] for name, (start, end) in periods(config).items()},
            "train_transactions": len(train), "train_fraud_rate": float(train.labels.mean()) if len(train) else 0.0,
            "validation_transactions": len(validation), "test_fraud_rate": float(windows["test"].labels.mean())}
    return FraudData(
        train=dataset(train, config, shuffle=True, genuine_only=unsupervised) if len(train) else None,
        validation=dataset(validation, config, genuine_only=unsupervised) if len(validation) else None,
        test=windows["test"], records=records(windows, source.uri), info=info, train_window=train,
        validation_window=validation)
