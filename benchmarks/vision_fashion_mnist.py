"""Benchmark: the vision classifier's default preset on all of Fashion-MNIST, one run per seed.

For each seed, in turn: test accuracy of the served model (the endpoints that are exported and
verified against the SavedModel; the mirror average is a layer of the model), test errors,
training time (the sum of epoch times, validation included), the epoch times, images/s and the
wall time of the whole `dlsuite train` (data, training, evaluation, MLflow logging, export and its
fresh-process check). Then the command that reproduced it. Target: every seed >= 93.5% test
accuracy within 10 minutes (600 s) of training on 2 CPU cores.

    .venv/bin/python benchmarks/vision_fashion_mnist.py [--seeds 1 2 3] [--set key=value ...] [--tracking-uri URI]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET_ACCURACY = 0.935
TARGET_TRAINING_SECONDS = 600


def run_once(overrides, seed, tracking_uri, data_dir=None):
    """Train the default preset with `seed` (None: the preset's); return what the benchmark prints."""
    import mlflow

    from pipelines.train import train

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as exports:
        summary = train("vision", preset="default", overrides=overrides, seed=seed, tracking_uri=tracking_uri,
                        data_dir=data_dir, export_root=exports)
    wall = time.perf_counter() - started
    client = mlflow.tracking.MlflowClient()
    epoch_seconds = [metric.value for metric in client.get_metric_history(summary["run_id"], "epoch_seconds")]
    train_examples = next(int(tag.value) for dataset_input in client.get_run(summary["run_id"]).inputs.dataset_inputs
                          if dataset_input.dataset.name.endswith("-train")
                          for tag in dataset_input.tags if tag.key == "records")
    training = sum(epoch_seconds)
    return {
        "seed": summary["config"]["seed"],
        "test_accuracy": round(summary["metrics"]["test_accuracy"], 4),
        "test_errors": int(summary["metrics"]["test_errors"]),
        "epochs": len(epoch_seconds),
        "training_seconds": round(training, 1),
        "epoch_seconds": [round(seconds, 1) for seconds in epoch_seconds],
        "images_per_second": round(train_examples * len(epoch_seconds) / training, 1),
        "total_wall_seconds": round(wall, 1),
        "run_id": summary["run_id"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None],
                        help="run once per seed, in turn (default: one run with the preset's seed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    parser.add_argument("--data-dir", default=None,
                        help="as `dlsuite train --data-dir`; default: $DLSUITE_DATA_DIR/fashion_mnist, else the "
                             "system copy")
    args = parser.parse_args()

    results = []
    for seed in args.seeds:
        results.append(run_once(args.overrides, seed, args.tracking_uri, args.data_dir))
        print(json.dumps(results[-1]), flush=True)
    met = [result["test_accuracy"] >= TARGET_ACCURACY and result["training_seconds"] <= TARGET_TRAINING_SECONDS
           for result in results]
    summary = {
        "seeds": [result["seed"] for result in results],
        "test_accuracy": [result["test_accuracy"] for result in results],
        "training_seconds": [result["training_seconds"] for result in results],
        "total_wall_seconds": [result["total_wall_seconds"] for result in results],
        "cores": os.cpu_count(),
        "command": " ".join([".venv/bin/python", *sys.argv]),
    }
    print(json.dumps(summary, indent=2))
    print(f"target (every seed >= {TARGET_ACCURACY:.1%} within {TARGET_TRAINING_SECONDS} s of training): "
          f"{'met' if all(met) else 'NOT met'} ({sum(met)} of {len(met)} seeds)")


if __name__ == "__main__":
    main()
