"""Tiny transaction streams as a user's own data comes: CSV and Parquet (only the handbook's pinned pickles are
unpickled, so the tiny stream is never written as pickles that would be read).

One stream, 2018-07-01 ... 2018-08-14 (every day of the smoke preset's periods and a week before them), 24
transactions a day over 300 cards and 40 terminals; two a day are frauds with large amounts (the handbook's
first scenario), so even a tiny model separates them.
"""

import numpy as np
import pandas as pd

FIRST_DAY, LAST_DAY = "2018-07-01", "2018-08-14"
COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_TIME_SECONDS",
           "TX_TIME_DAYS", "TX_FRAUD", "TX_FRAUD_SCENARIO"]


def stream(first_day=FIRST_DAY, last_day=LAST_DAY, per_day=24, seed=0):
    """The transactions as the handbook's DataFrame (its nine columns, ids as Python ints), sorted by time."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(first_day, last_day, freq="D")
    rows = []
    for day in days:
        seconds = np.sort(rng.integers(0, 86400, per_day))
        fraud = np.zeros(per_day, dtype=np.int64)
        fraud[rng.choice(per_day, 2, replace=False)] = 1
        amounts = np.where(fraud == 1, rng.uniform(250, 400, per_day), rng.uniform(5, 120, per_day)).round(2)
        for second, is_fraud, amount in zip(seconds, fraud, amounts):
            rows.append((day + pd.Timedelta(seconds=int(second)), int(rng.integers(300)), int(rng.integers(40)),
                         float(amount), int(is_fraud)))
    frame = pd.DataFrame(rows, columns=["TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"])
    start = pd.Timestamp("2018-04-01")
    frame.insert(0, "TRANSACTION_ID", np.arange(len(frame)) + 1000)
    frame["TX_TIME_SECONDS"] = ((frame["TX_DATETIME"] - start).dt.total_seconds()).astype(int).astype(object)
    frame["TX_TIME_DAYS"] = ((frame["TX_DATETIME"] - start).dt.days).astype(object)
    frame["TX_FRAUD_SCENARIO"] = frame["TX_FRAUD"]
    frame["CUSTOMER_ID"] = frame["CUSTOMER_ID"].astype(object)
    frame["TERMINAL_ID"] = frame["TERMINAL_ID"].astype(object)
    return frame[COLUMNS].set_index(frame["TRANSACTION_ID"].rename(None))


def make_csv_folder(folder, frame=None, name="transactions.csv"):
    """The same stream as one CSV file with the handbook's column names."""
    frame = stream() if frame is None else frame
    folder.mkdir(parents=True)
    frame.to_csv(folder / name, index=False)
    return folder


def make_parquet_folder(folder, frame=None):
    frame = stream() if frame is None else frame
    folder.mkdir(parents=True)
    frame.reset_index(drop=True).to_parquet(folder / "transactions.parquet")
    return folder
