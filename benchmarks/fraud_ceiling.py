"""Benchmark: what any model of causal features can reach on the fraud reference experiment's test week.

The handbook's simulator marks every payment at a compromised terminal (scenario 2) as fraud for 28 days, but
those payments are ordinary customers' ordinary payments: the only trace of the compromise a model may read is
the terminal's labelled frauds, which arrive `delay_days` late. A scenario-2 fraud at a terminal with no fraud
in the 30 days ending `delay_days` before it (the window of the terminal features) is therefore
indistinguishable from a genuine payment. Every other fraud is visible in principle (a large amount, a card
paying far above its usual amounts, a terminal with known frauds).

This script scores the test week (the presets' periods, cards known compromised left out exactly as the app
does) with two oracles, using the pickles' `TX_FRAUD_SCENARIO` column, which no model reads:
  - "visible first": every visible fraud ranked above everything else, the invisible frauds and the genuine
    payments in a random order (one order per seed): the best any causal model can do, up to luck;
  - "all frauds first": the cap of the metric itself on this week (a model that could see the invisible).
It prints AUC ROC, average precision and CP@100 (apps.fraud.metrics, the app's own definitions) per order and
the counts, against the target (AUC 0.88, AP 0.70, CP@100 0.295: 96% of this ceiling's mean CP@100, 0.306).
Pickles are read only after their SHA-256 matches the digest pinned in apps/fraud/handbook_sums.py
(apps.fraud.transactions).

    .venv/bin/python benchmarks/fraud_ceiling.py [--orders 10] [--data-dir DIR]
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.fraud import data as fraud_data  # noqa: E402
from apps.fraud import features, metrics, transactions  # noqa: E402
from pipelines import catalog  # noqa: E402
from pipelines.train import resolve_config  # noqa: E402

TARGET = {"auc_roc": 0.88, "average_precision": 0.70, "card_precision_top_100": 0.295}  # 0.295: 96% of the ceiling


def read_with_scenarios(files):
    """The pickles (pinned checksums first) with TX_FRAUD_SCENARIO and TERMINAL_ID, sorted by time like the app's."""
    frame = pd.concat([pd.read_pickle(io.BytesIO(transactions.verified_bytes(path))) for path in files],
                      ignore_index=True)
    frame["TX_DATETIME"] = pd.to_datetime(frame["TX_DATETIME"]).astype("datetime64[ns]")
    return frame.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)


def invisible_frauds(frame, rows, delay_days):
    """Which of `rows` are scenario-2 frauds at a terminal with no fraud in the (30 + delay, delay] days before."""
    frauds = frame[frame["TX_FRAUD"] == 1]
    known = {terminal: group["TX_DATETIME"].to_numpy() for terminal, group in frauds.groupby("TERMINAL_ID")}
    result = np.zeros(len(rows), dtype=bool)
    window = (np.timedelta64(features.WINDOWS[-1] + delay_days, "D"), np.timedelta64(delay_days, "D"))
    for position, row in enumerate(rows):
        if frame.at[row, "TX_FRAUD"] != 1 or frame.at[row, "TX_FRAUD_SCENARIO"] != 2:
            continue
        when = frame.at[row, "TX_DATETIME"].to_datetime64()
        times = known.get(frame.at[row, "TERMINAL_ID"], np.array([], dtype="datetime64[ns]"))
        result[position] = not ((times > when - window[0]) & (times <= when - window[1])).any()
    return result


def scores(labels, invisible, seed, see_all=False):
    rng = np.random.default_rng(seed)
    noise = rng.random(len(labels))
    visible = (labels == 1) if see_all else (labels == 1) & ~invisible
    return visible + noise * 0.5  # visible frauds in [1, 1.5), the rest in [0, 0.5): random among themselves


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10, help="random orders (seeds 0 ... orders-1) per oracle")
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/fraud_handbook")
    args = parser.parse_args()
    started = time.time()
    data_dir = args.data_dir or str(Path(os.environ.get("DLSUITE_DATA_DIR", "../shared/datasets")) / "fraud_handbook")
    _name, spec = catalog.task_spec("fraud", "detection")
    config = resolve_config(spec, "default")
    _folder, layout, files = fraud_data.check(config, data_dir)
    if layout != "pickle":
        sys.exit("The ceiling needs the handbook's pickles (their TX_FRAUD_SCENARIO column).")
    first, last = fraud_data.needed_days(config)
    frame = read_with_scenarios(transactions.select_days(files, first, last))
    start, end = fraud_data.periods(config)["test"]
    labels, customers = frame["TX_FRAUD"].to_numpy(np.int64), frame["CUSTOMER_ID"].to_numpy(np.int64)
    days = frame["TX_DATETIME"].dt.normalize().to_numpy()
    rows = fraud_data.period_rows(config, "test", days, customers, labels)
    test_labels, test_customers, test_days = labels[rows], customers[rows], days[rows]
    invisible = invisible_frauds(frame, rows, config.delay_days)
    counts = {"test_transactions": len(rows), "frauds": int(test_labels.sum()), "invisible_frauds": int(invisible.sum()),
              "compromised_cards_per_day": round(float(pd.DataFrame({"c": test_customers, "d": test_days})[
                  test_labels == 1].groupby("d")["c"].nunique().mean()), 1)}
    print(json.dumps({"test_period": [str(start), str(end)], **counts}), flush=True)
    rows_out = {}
    for oracle, see_all in (("visible first", False), ("all frauds first", True)):
        results = []
        for seed in range(args.orders):
            score = scores(test_labels, invisible, seed, see_all)
            results.append({"auc_roc": metrics.auc_roc(test_labels, score),
                            "average_precision": metrics.average_precision(test_labels, score),
                            "card_precision_top_100": metrics.card_precision_top_k(
                                test_customers, test_days, test_labels, score, 100)[0]})
            if see_all or seed < 10:
                print(json.dumps({"oracle": oracle, "seed": seed, **{k: round(v, 4) for k, v in results[-1].items()}}),
                      flush=True)
            if see_all:
                break  # no randomness matters: every fraud is ranked first
        if not see_all:
            reaching = sum(r["card_precision_top_100"] >= TARGET["card_precision_top_100"] - 1e-9 for r in results)
        rows_out[oracle] = {name: {"mean": round(float(np.mean([r[name] for r in results])), 4),
                                   "min": round(float(np.min([r[name] for r in results])), 4),
                                   "max": round(float(np.max([r[name] for r in results])), 4)} for name in TARGET}
    print(json.dumps({"summary": rows_out, "target": TARGET}, indent=1))
    best = rows_out["visible first"]["card_precision_top_100"]
    print(f"CP@100 of the best causal ranking over {args.orders} random orders: mean {best['mean']:.4f}, at most "
          f"{best['max']:.4f}; {reaching} of {args.orders} orders reach the target "
          f"{TARGET['card_precision_top_100']} (CP@100 moves in steps of 1/{7 * 100}: one card in one day).")
    print(f"wall time: {time.time() - started:.0f} s")
    print("command: .venv/bin/python benchmarks/fraud_ceiling.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
