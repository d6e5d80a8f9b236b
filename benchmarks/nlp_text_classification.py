"""Benchmark: text_classification on SMS Spam, every model (CNN, BiRNN, transformer) over several seeds.

Each run is the model's preset (`--preset cnn|rnn|transformer`: the default preset with that model) through
`pipelines.train.train`, so it reads, splits (stratified by the seed: each seed is another split and another
initialization), learns the vocabulary, trains with early stopping and evaluates on the held-out test split.
Printed per run: accuracy, MCC, spam precision/recall/F1, average precision, the best validation loss (what a
change of recipe is judged by), epochs, training and wall time.
Then the mean and spread per model, the command, and whether the issue's target holds for the best model
(MCC >= 0.93 and spam F1 >= 0.94, every seed). Exports are skipped unless `--export` (the tests check them).
The machine is shared: wall times depend on the load (printed: the 1-minute load average per run).

    .venv/bin/python benchmarks/nlp_text_classification.py [--models cnn rnn transformer] [--seeds 1 2 3 4 5]
        [--set key=value ...] [--data-dir DIR] [--tracking-uri URI] [--export]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed_train  # noqa: E402 - puts the repository on sys.path too
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET = {"mcc": 0.93, "f1_spam": 0.94}
METRICS = ("accuracy", "mcc", "precision_spam", "recall_spam", "f1_spam", "average_precision", "macro_f1")


def train_run(task, preset, overrides, seed, args):
    """One `dlsuite train` run: `(metrics, timing)`, the metrics without their `test_` prefix."""
    run = timed_train("nlp", task, preset=preset, overrides=overrides, seed=seed, data_dir=args.data_dir,
                      tracking_uri=args.tracking_uri, export=args.export, history_keys=("val_loss",))
    summary = run.summary
    metrics = {name: round(summary["metrics"][f"test_{name}"], 4) for name in METRICS
               if f"test_{name}" in summary["metrics"]}
    timing = {"best_val_loss": round(min(run.history["val_loss"]), 4), "epochs": run.epochs, "training_seconds": run.training_seconds,
              "wall_seconds": run.wall_seconds, "load_average_1min": round(os.getloadavg()[0], 2),
              "seed": summary["config"]["seed"], "run_id": summary["run_id"]}
    return metrics, timing


def summarize(rows, key):
    import numpy as np

    summary = {}
    for name in sorted({row[key] for row in rows}, key=[row[key] for row in rows].index):
        group = [row for row in rows if row[key] == name]
        summary[name] = {metric: f"{np.mean([row[metric] for row in group]):.4f} ± "
                                 f"{np.std([row[metric] for row in group]):.4f}" for metric in METRICS
                         if all(metric in row for row in group)}
        summary[name]["mean_wall_seconds"] = round(float(np.mean([row["wall_seconds"] for row in group])), 1)
        summary[name]["runs"] = len(group)
    return summary


def common_arguments(parser):
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/sms_spam")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    parser.add_argument("--export", action="store_true", help="also export and verify each run's SavedModel")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "rnn", "transformer"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    common_arguments(parser)
    args = parser.parse_args()

    started = time.perf_counter()
    rows = []
    for model in args.models:
        for seed in args.seeds:
            metrics, timing = train_run("text_classification", model, args.overrides, seed, args)
            rows.append({"model": model, **metrics, **timing})
            print(json.dumps(rows[-1]), flush=True)
    summary = summarize(rows, "model")
    best = max(summary, key=lambda model: float(summary[model]["mcc"].split()[0]))
    met = [all(row[name] >= bound for name, bound in TARGET.items()) for row in rows if row["model"] == best]
    print(json.dumps({"summary": summary, "total_wall_seconds": round(time.perf_counter() - started, 1),
                      "cores": os.cpu_count(), "command": " ".join([".venv/bin/python", *sys.argv])}, indent=2))
    print(f"target (best model MCC >= {TARGET['mcc']} and spam F1 >= {TARGET['f1_spam']}): best is {best}, "
          f"{'met' if all(met) else 'NOT met'} ({sum(met)} of {len(met)} seeds)")


if __name__ == "__main__":
    main()
