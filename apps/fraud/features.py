"""The handbook's features, in one place for training, evaluation and serving.

Two halves, one definition each:
- `aggregates(frame, delay_days)` (pandas, on the transaction history): per transaction, the customer's
  number of transactions and mean amount over the last 1, 7 and 30 days and the spread of its amounts (standard
  deviation, median, maximum) over the last 7 and 30 days (the transaction itself included), and the terminal's
  number of transactions and fraud rate ("risk") over 1, 7 and 30 days ending `delay_days` before it: fraud
  labels are only known a week later. Every window ends at the transaction or earlier, so no feature looks at
  the future (`tests/fraud/test_features.py` plants a future fraud to check it). A payment system keeps these
  per card and terminal (counters, and the card's amounts of the last 30 days for the spread) and sends them
  with each transaction (AGGREGATES).
- `TransactionFeatures` (a Keras layer, inside every model): from the raw fields (the timestamp string and the
  amount) and the aggregates, the model's numeric features: the weekend and night flags, log amounts, the
  amount against the customer's means, medians and maxima, its z-score against the customer's spread, log counts
  and the terminal risks. Training, `evaluate` and the exported SavedModel run this same layer, so the served
  features are the trained ones.
`history(frame, length)` gives the sequence model the customer's previous `length` transactions.
"""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

WINDOWS = (1, 7, 30)
CUSTOMER = [f"customer_{kind}_{days}day" for days in WINDOWS for kind in ("nb_tx", "avg_amount")]
TERMINAL = [f"terminal_{kind}_{days}day" for days in WINDOWS for kind in ("nb_tx", "risk")]
SPREAD_WINDOWS = (7, 30)  # the card's usual amounts, against which a compromised card's inflated ones stand out
SPREAD = {"std": "std", "median": "median", "max": "max"}  # aggregate kind -> pandas rolling method
CUSTOMER_SPREAD = [f"customer_{kind}_amount_{days}day" for days in SPREAD_WINDOWS for kind in SPREAD]
AGGREGATES = CUSTOMER + TERMINAL + CUSTOMER_SPREAD
DATETIME_PATTERN = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NIGHT_LAST_HOUR = 6  # the handbook's night: 00:00 to 06:59


# === Aggregates over the history (pandas) ===


def _rolling(frame, key, column, days, method="sum"):
    """Per `key`, the sum (or another pandas rolling `method`) of `column` over the `days` days ending at each
    transaction (itself included).

    Groups come out sorted by key, each in the frame's (time) order: the stable argsort of the keys."""
    window = frame.groupby(key, sort=True).rolling(f"{days}D", on="TX_DATETIME")[column]
    rolled = (window.std(ddof=0) if method == "std" else getattr(window, method)()).to_numpy()
    result = np.empty(len(frame))
    result[np.argsort(frame[key].to_numpy(), kind="stable")] = rolled
    return result


def aggregates(frame, delay_days):
    """`frame` (sorted by time, RangeIndex) -> a DataFrame of the AGGREGATES columns, row for row."""
    frame = frame.assign(ONE=1.0)
    result = {}
    for days in WINDOWS:
        count = _rolling(frame, "CUSTOMER_ID", "ONE", days)
        result[f"customer_nb_tx_{days}day"] = count
        result[f"customer_avg_amount_{days}day"] = _rolling(frame, "CUSTOMER_ID", "TX_AMOUNT", days) / count
    for days in SPREAD_WINDOWS:  # population standard deviation (0 for one transaction), median, maximum
        for kind, method in SPREAD.items():
            result[f"customer_{kind}_amount_{days}day"] = np.maximum(
                _rolling(frame, "CUSTOMER_ID", "TX_AMOUNT", days, method), 0.0)
    frame = frame.assign(FRAUD=frame["TX_FRAUD"].astype(np.float64))
    delayed_tx = _rolling(frame, "TERMINAL_ID", "ONE", delay_days) if delay_days else 0.0
    delayed_fraud = _rolling(frame, "TERMINAL_ID", "FRAUD", delay_days) if delay_days else 0.0
    for days in WINDOWS:  # (t - delay - days, t - delay]: the window ending where labels become known
        count = _rolling(frame, "TERMINAL_ID", "ONE", delay_days + days) - delayed_tx
        frauds = _rolling(frame, "TERMINAL_ID", "FRAUD", delay_days + days) - delayed_fraud
        result[f"terminal_nb_tx_{days}day"] = count
        result[f"terminal_risk_{days}day"] = np.divide(frauds, count, out=np.zeros(len(frame)), where=count > 0)
    return pd.DataFrame({name: np.round(result[name], 6).astype(np.float32) for name in AGGREGATES})


def history(frame, length):
    """The customer's previous `length` transactions, oldest first, left-padded: `(amounts, datetimes)` arrays
    `[rows, length]` of float32 and strings ("" where the customer had fewer transactions)."""
    grouped = frame.groupby("CUSTOMER_ID", sort=False)
    amounts = np.zeros((len(frame), length), np.float32)
    datetimes = np.full((len(frame), length), "", dtype=object)
    stamps = frame["TX_DATETIME"].dt.strftime(DATETIME_FORMAT)
    for lag in range(1, length + 1):
        previous = grouped["TX_AMOUNT"].shift(lag)
        present = previous.notna().to_numpy()
        amounts[present, length - lag] = previous[present].to_numpy()
        datetimes[present, length - lag] = stamps.groupby(frame["CUSTOMER_ID"], sort=False).shift(lag)[present]
    return amounts, datetimes


def serving_inputs(frame, features, sequence_length=0):
    """The raw serving inputs of `frame`'s transactions: what a payment system sends (README: "Serving")."""
    inputs = {"tx_datetime": frame["TX_DATETIME"].dt.strftime(DATETIME_FORMAT).to_numpy(dtype=object),
              "tx_amount": frame["TX_AMOUNT"].to_numpy(np.float32),
              **{name: features[name].to_numpy(np.float32) for name in AGGREGATES}}
    if sequence_length:
        inputs["history_tx_amount"], inputs["history_tx_datetime"] = history(frame, sequence_length)
    return inputs


# === The same features inside the model (TensorFlow) ===


def parse_datetime(strings):
    """`YYYY-MM-DD HH:MM:SS` strings -> (days since 1970-01-01, seconds of the day), int64. Empty strings give 0."""
    strings = tf.where(strings == "", "1970-01-01 00:00:00", strings)

    def number(start, width):
        return tf.strings.to_number(tf.strings.substr(strings, start, width), tf.int64)

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    seconds = number(11, 2) * 3600 + number(14, 2) * 60 + number(17, 2)
    year = year - tf.cast(month <= 2, tf.int64)  # days from the civil date (H. Hinnant's algorithm)
    era = tf.math.floordiv(year, 400)
    year_of_era = year - era * 400
    day_of_year = (153 * tf.math.floormod(month + 9, 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468, seconds


def calendar_flags(strings):
    """(weekday 0=Monday .. 6, weekend flag, night flag) of timestamp strings."""
    days, seconds = parse_datetime(strings)
    weekday = tf.math.floormod(days + 3, 7)  # 1970-01-01 was a Thursday
    weekend = tf.cast(weekday >= 5, tf.float32)
    night = tf.cast(seconds // 3600 <= NIGHT_LAST_HOUR, tf.float32)
    return weekday, weekend, night


@keras.saving.register_keras_serializable(package="dlsuite_fraud")
class TransactionFeatures(keras.layers.Layer):
    """Raw fields + aggregates -> `[batch, NUM_FEATURES]` float32 (before normalization)."""

    NAMES = ["log_amount", "weekend", "night",
             *[f"log_{name}" for name in CUSTOMER], *[f"log_amount_over_avg_{days}day" for days in WINDOWS],
             *[f"log_{name}" if "nb_tx" in name else name for name in TERMINAL],
             *[name for days in SPREAD_WINDOWS for name in (
                 f"amount_z_score_{days}day", f"log_amount_over_median_{days}day", f"log_max_over_amount_{days}day")]]
    Z_SCORE_RANGE = (-10.0, 50.0)  # (amount - mean) / (std + 1), clipped: a first large payment has no spread yet

    def call(self, inputs):
        log_amount = tf.math.log1p(tf.cast(inputs["tx_amount"], tf.float32))
        _weekday, weekend, night = calendar_flags(inputs["tx_datetime"])
        columns = [log_amount, weekend, night]
        columns += [tf.math.log1p(tf.cast(inputs[name], tf.float32)) for name in CUSTOMER]
        columns += [log_amount - tf.math.log1p(tf.cast(inputs[f"customer_avg_amount_{days}day"], tf.float32))
                    for days in WINDOWS]
        columns += [tf.math.log1p(tf.cast(inputs[name], tf.float32)) if "nb_tx" in name
                    else tf.cast(inputs[name], tf.float32) for name in TERMINAL]
        amount = tf.cast(inputs["tx_amount"], tf.float32)
        for days in SPREAD_WINDOWS:
            mean, std, median, maximum = (tf.cast(inputs[f"customer_{kind}_amount_{days}day"], tf.float32)
                                          for kind in ("avg", "std", "median", "max"))
            columns += [tf.clip_by_value((amount - mean) / (std + 1.0), *self.Z_SCORE_RANGE),
                        log_amount - tf.math.log1p(median), tf.math.log1p(maximum) - log_amount]
        return tf.stack(columns, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape["tx_amount"][0], len(self.NAMES))


@keras.saving.register_keras_serializable(package="dlsuite_fraud")
class HistoryFeatures(keras.layers.Layer):
    """The customer's previous transactions -> `[batch, length, 5]`: present, log amount, log hours before the
    current transaction, weekend, night (zeros where there was no transaction)."""

    def call(self, inputs):
        strings = inputs["history_tx_datetime"]
        present = tf.cast(strings != "", tf.float32)
        days, seconds = parse_datetime(strings)
        now_days, now_seconds = parse_datetime(inputs["tx_datetime"])
        elapsed = (now_days[:, None] - days) * 86400 + now_seconds[:, None] - seconds
        hours = tf.maximum(tf.cast(elapsed, tf.float32), 0.0) / 3600.0
        _weekday, weekend, night = calendar_flags(strings)
        amount = tf.math.log1p(tf.maximum(tf.cast(inputs["history_tx_amount"], tf.float32), 0.0))
        steps = [present, amount * present, tf.math.log1p(hours) * present, weekend * present, night * present]
        return tf.stack(steps, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape["history_tx_amount"], 5)
