"""Did an exported fraud model learn? Scored by the tests on the handbook's raw pickles, independently of the app.

The files are checked against SHA256SUMS with hashlib and read with pandas; the features are computed the way
the handbook's notebooks define them (`get_customer_spending_behaviour_features`, `get_count_risk_rolling_window`),
with prefix sums and binary search over each card's and terminal's times, not with `apps.fraud.features`; the export
is called through `tf.saved_model.load`. Returns `(average precision, the fraud rate)`: a random ranking's AP is
the fraud rate.
"""

import datetime
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd


def _read(folder, first_day, last_day):
    sums = dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines() if line)
    frames, day = [], first_day
    while day <= last_day:
        name = f"data/{day}.pkl"
        content = (folder / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == sums[name], name
        frames.append(pd.read_pickle(folder / name))
        day += datetime.timedelta(days=1)
    return pd.concat(frames).sort_values("TX_DATETIME", kind="stable")


def _window_sums(keys, seconds, values, low, high):
    """For each row, the sum of `values` over the rows of its key with time in (t - low, t - high] (t - high
    inclusive; with high=0 up to the row itself). Keys and times in one sorted number line: searchsorted."""
    line = keys.astype(np.float64) * 1e9 + seconds
    order = np.lexsort((np.arange(len(line)), line))
    ordered, totals = line[order], np.r_[0.0, np.cumsum(values[order])]
    position = np.empty(len(line), dtype=np.int64)
    position[order] = np.arange(len(line))
    upper = position + 1 if high == 0 else np.searchsorted(ordered, line - high, side="right")
    lower = np.searchsorted(ordered, line - low, side="right")
    return totals[upper] - totals[np.minimum(lower, upper)]


def _window_statistics(keys, seconds, values, low, rows):
    """For each of `rows`, the population standard deviation, median and maximum of `values` over the rows of its
    key with time in (t - low, t] (the row itself and its key's earlier rows): one sorted slice of the
    key-and-time-sorted line per row (np.std and np.median cost more than the arithmetic on 130,000 small windows)."""
    line = keys.astype(np.float64) * 1e9 + seconds
    order = np.lexsort((np.arange(len(line)), line))
    ordered, sorted_values = line[order], values[order]
    position = np.empty(len(line), dtype=np.int64)
    position[order] = np.arange(len(line))
    lower = np.searchsorted(ordered, line - low, side="right")
    statistics = np.zeros((3, len(line)))
    for row in np.flatnonzero(rows):
        window = np.sort(sorted_values[lower[row]:position[row] + 1])
        size = len(window)
        deviation = np.sqrt(np.square(window - window.sum() / size).sum() / size)
        statistics[:, row] = deviation, 0.5 * (window[(size - 1) // 2] + window[size // 2]), window[-1]
    return statistics


def _features(frame, delay_days=7, rows=None):
    """The handbook's 12 aggregates (its notebooks' definitions, `rolling(f"{days}d")` per card and terminal),
    and the card's amount spread over 7 and 30 days (standard deviation, median and maximum of each window's
    amounts, for `rows` only: a boolean mask, default all)."""
    seconds = (frame["TX_DATETIME"] - pd.Timestamp("2018-01-01")).dt.total_seconds().to_numpy()
    customers, terminals = frame["CUSTOMER_ID"].to_numpy(np.int64), frame["TERMINAL_ID"].to_numpy(np.int64)
    ones, amounts = np.ones(len(frame)), frame["TX_AMOUNT"].to_numpy(np.float64)
    frauds, day, delay = frame["TX_FRAUD"].to_numpy(np.float64), 86400.0, delay_days * 86400.0
    rows = np.ones(len(frame), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    for days in (1, 7, 30):
        count = _window_sums(customers, seconds, ones, days * day, 0)
        frame[f"customer_nb_tx_{days}day"] = count
        frame[f"customer_avg_amount_{days}day"] = _window_sums(customers, seconds, amounts, days * day, 0) / count
        if days in (7, 30):
            for kind, values in zip(("std", "median", "max"),
                                    _window_statistics(customers, seconds, amounts, days * day, rows)):
                frame[f"customer_{kind}_amount_{days}day"] = values
        count = _window_sums(terminals, seconds, ones, delay + days * day, delay)
        frame[f"terminal_nb_tx_{days}day"] = count
        risk = _window_sums(terminals, seconds, frauds, delay + days * day, delay) / np.maximum(count, 1)
        frame[f"terminal_risk_{days}day"] = np.where(count > 0, risk, 0.0)
    return frame


def fraud_average_precision(export_dir, data_root, test_start="2018-08-08", test_end="2018-08-14"):
    import tensorflow as tf

    folder = next(path for path in (Path(data_root), Path(data_root) / "fraud_handbook") if (path / "SHA256SUMS").is_file())
    first, last = datetime.date.fromisoformat(test_start), datetime.date.fromisoformat(test_end)
    frame = _read(folder, first - datetime.timedelta(days=37), last)
    frame = frame.reset_index(drop=True)
    frame = _features(frame, rows=(frame["TX_DATETIME"].dt.date >= first).to_numpy())
    test = frame[frame["TX_DATETIME"].dt.date >= first].sort_values("TX_DATETIME")
    signature = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    names = [name for name in signature.structured_input_signature[1] if name not in ("tx_datetime", "tx_amount")]
    scores = []
    for start in range(0, len(test), 8192):
        part = test.iloc[start:start + 8192]
        inputs = {"tx_datetime": tf.constant(part["TX_DATETIME"].dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(str)),
                  "tx_amount": tf.constant(part["TX_AMOUNT"].to_numpy(np.float32)),
                  **{name: tf.constant(part[name].to_numpy(np.float32)) for name in names}}
        scores.append(signature(**inputs)["fraud_score"].numpy())
    scores, labels = np.concatenate(scores), test["TX_FRAUD"].to_numpy()
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    precision_at_hits = np.cumsum(hits)[hits == 1] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hits.mean()), float(labels.mean())
