"""Benchmark: the rating task on MovieLens 100K's official folds u1..u5 (and optionally ua, ub), one run each.

For each split, in turn: test RMSE and MAE of the served model (the in-memory endpoints, the same
functions the export holds), the RMSE of predicting the training mean (the baseline), the epochs
trained, the training time (the sum of epoch times) and the wall time of the whole `dlsuite train`
run. Then the mean over the u1..u5 folds, the command that reproduced it and whether the target
(mean RMSE over u1..u5 <= 0.905) is met. Exports are skipped unless `--export` (the tests check them).

    .venv/bin/python benchmarks/recommender_rating.py [--preset default] [--folds 1 2 3 4 5] [--splits ua ub]
        [--seed 42] [--set key=value ...] [--data-dir DIR] [--tracking-uri URI] [--export]
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

TARGET_MEAN_RMSE = 0.905


def run_once(preset, overrides, seed, data_dir, tracking_uri, export):
    run = timed_train("recommender", "rating", preset=preset, overrides=overrides, seed=seed, data_dir=data_dir,
                      tracking_uri=tracking_uri, export=export)
    summary, config = run.summary, run.summary["config"]
    return {
        "split": f"u{config['fold']}" if config["split"] in ("auto", "fold") else config["split"],
        "seed": config["seed"],
        "test_rmse": round(summary["metrics"]["test_rmse"], 4),
        "test_mae": round(summary["metrics"]["test_mae"], 4),
        "test_rmse_global_mean": round(summary["metrics"]["test_rmse_global_mean"], 4),
        "epochs": run.epochs,
        "training_seconds": run.training_seconds,
        "total_wall_seconds": run.wall_seconds,
        "run_id": summary["run_id"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--folds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--splits", nargs="*", default=[], choices=["ua", "ub"], help="also these official splits")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/movielens_100k")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    parser.add_argument("--export", action="store_true", help="also export and verify each run's SavedModel")
    args = parser.parse_args()

    started = time.perf_counter()
    runs = [[*args.overrides, "split=fold", f"fold={fold}"] for fold in args.folds]
    runs += [[*args.overrides, f"split={split}"] for split in args.splits]
    results = []
    for overrides in runs:
        results.append(run_once(args.preset, overrides, args.seed, args.data_dir, args.tracking_uri, args.export))
        print(json.dumps(results[-1]), flush=True)
    folds = [result for result in results if result["split"].startswith("u") and result["split"][1:].isdigit()]
    mean_rmse = sum(result["test_rmse"] for result in folds) / len(folds) if folds else None
    summary = {
        "preset": args.preset,
        "test_rmse": {result["split"]: result["test_rmse"] for result in results},
        "test_mae": {result["split"]: result["test_mae"] for result in results},
        "mean_test_rmse_u1_u5": round(mean_rmse, 4) if mean_rmse is not None else None,
        "mean_test_mae_u1_u5": round(sum(result["test_mae"] for result in folds) / len(folds), 4) if folds else None,
        "training_seconds": {result["split"]: result["training_seconds"] for result in results},
        "total_wall_seconds": round(time.perf_counter() - started, 1),
        "cores": os.cpu_count(),
        "command": " ".join([".venv/bin/python", *sys.argv]),
    }
    print(json.dumps(summary, indent=2))
    if len(folds) == 5:
        print(f"target (mean RMSE over u1..u5 <= {TARGET_MEAN_RMSE}): "
              f"{'met' if mean_rmse <= TARGET_MEAN_RMSE else 'NOT met'} ({mean_rmse:.4f})")


if __name__ == "__main__":
    main()
