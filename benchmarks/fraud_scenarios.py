"""Benchmark: where a fraud model's ranking loses, by the simulator's fraud scenario.

Trains one preset in process (`Task.fit`, as `dlsuite train` does, no MLflow run) for each seed, scores the
validation week (07-25 ... 07-31) and the test week (08-08 ... 08-14) with the trained model, and prints for each
kind of fraud how many genuine payments rank above it (median, quartiles, how many frauds have more than 100 above
them) and the average precision the model would reach if that kind were ranked first. The kinds come from the
pickles' `TX_FRAUD_SCENARIO`, which no model reads: 1 = an amount above 220, 2 = a compromised terminal (visible
once its frauds are labelled, `benchmarks/fraud_ceiling.py`), 3 = a compromised card paying five times its usual
amounts. It is how the tree-chosen feature steps (`feature_bins`, apps/fraud/README.md) were found: without them
the sequence model ranked the "easy" payments above 220 under a median of 56 to 100 genuine payments.

    .venv/bin/python benchmarks/fraud_scenarios.py [--preset sequence] [--seeds 1 2 3] [--set key=value ...]
        [--data-dir DIR]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fraud_ceiling import invisible_frauds, read_with_scenarios  # noqa: E402 - puts the repository on sys.path
from timing import fit_in_process  # noqa: E402
import numpy as np  # noqa: E402

from apps.fraud import data as fraud_data  # noqa: E402
from apps.fraud import metrics, models, transactions  # noqa: E402
from pipelines import catalog  # noqa: E402
from pipelines.train import resolve_config  # noqa: E402

KINDS = {"amount above 220 (1)": (1, False), "terminal, visible (2)": (2, False), "terminal, invisible (2)": (2, True),
         "card (3)": (3, False)}


def breakdown(labels, scores, scenarios, invisible):
    """Per kind of fraud: genuine payments ranked above it, and the AP with that kind ranked first."""
    genuine = np.sort(scores[labels == 0])
    above = len(genuine) - np.searchsorted(genuine, scores, side="right")  # genuine payments scored higher
    result = {"average_precision": round(metrics.average_precision(labels, scores), 4)}
    for kind, (scenario, hidden) in KINDS.items():
        chosen = (labels == 1) & (scenarios == scenario) & (invisible == hidden)
        if not chosen.any():
            continue
        lifted = np.where(chosen, scores + 2.0, scores)
        result[kind] = {"frauds": int(chosen.sum()), "genuine_above_median": float(np.median(above[chosen])),
                        "quartiles": [float(q) for q in np.percentile(above[chosen], [25, 75])],
                        "more_than_100_above": int((above[chosen] > 100).sum()),
                        "ap_if_first": round(metrics.average_precision(labels, lifted), 4)}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sequence")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/fraud_handbook")
    args = parser.parse_args()
    started = time.perf_counter()
    data_dir = args.data_dir or str(Path(os.environ.get("DLSUITE_DATA_DIR", "../shared/datasets")) / "fraud_handbook")
    _name, spec = catalog.task_spec("fraud", "detection")
    config = resolve_config(spec, args.preset, overrides=args.overrides)
    _folder, layout, files = fraud_data.check(config, data_dir)
    if layout != "pickle":
        sys.exit("The breakdown needs the handbook's pickles (their TX_FRAUD_SCENARIO column).")
    frame = read_with_scenarios(transactions.select_days(files, *fraud_data.needed_days(config)))  # the app's order
    labels, customers = frame["TX_FRAUD"].to_numpy(np.int64), frame["CUSTOMER_ID"].to_numpy(np.int64)
    days, scenarios = frame["TX_DATETIME"].dt.normalize().to_numpy(), frame["TX_FRAUD_SCENARIO"].to_numpy()
    rows = {name: fraud_data.period_rows(config, name, days, customers, labels) for name in ("validation", "test")}
    invisible = {name: invisible_frauds(frame, chosen, config.delay_days) for name, chosen in rows.items()}
    for seed in args.seeds:
        run = fit_in_process("fraud", "detection", preset=args.preset, overrides=args.overrides, seed=seed,
                             data_dir=data_dir)
        for name, window in (("validation", run.data.validation_window), ("test", run.data.test)):
            if not np.array_equal(window.labels, labels[rows[name]]):
                sys.exit(f"The {name} rows differ from the app's window: cannot attribute scenarios.")
            result = breakdown(window.labels, models.scores(run.model, window.inputs), scenarios[rows[name]],
                               invisible[name])
            print(json.dumps({"preset": args.preset, "seed": seed, "period": name, "epochs": len(run.epoch_seconds),
                              **result}), flush=True)
    print(f"wall time {time.perf_counter() - started:.0f} s")
    print("command: .venv/bin/python benchmarks/fraud_scenarios.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
