"""Benchmark: spoken digit strings with CTC (speech/digit_strings, default preset) on FSDD.

Trains on synthetic utterances of 1-7 digits built from FSDD's training takes
and scores test utterances built from its test takes (0-4). Prints the digit
error rate (edit distance / reference length) and whole-string accuracy for
beam-search and greedy decoding, training time (sum of epoch times), wall time
of the whole `dlsuite train`, and the command that reproduced it.
Target: digit error rate <= 5%.

    .venv/bin/python benchmarks/speech_ctc.py [--seed 1] [--set key=value ...]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/fsdd")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    args = parser.parse_args()

    import mlflow

    from pipelines.train import train

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as exports:
        summary = train("speech", task="digit_strings", preset="default", overrides=args.overrides, seed=args.seed,
                        data_dir=args.data_dir, tracking_uri=args.tracking_uri, export_root=exports)
    total = time.perf_counter() - started
    client = mlflow.tracking.MlflowClient()
    epoch_seconds = [metric.value for metric in client.get_metric_history(summary["run_id"], "epoch_seconds")]
    metrics = summary["metrics"]
    result = {
        "test_digit_error_rate": round(metrics["test_digit_error_rate"], 4),
        "test_string_accuracy": round(metrics["test_string_accuracy"], 4),
        "test_digit_error_rate_greedy": round(metrics["test_digit_error_rate_greedy"], 4),
        "test_string_accuracy_greedy": round(metrics["test_string_accuracy_greedy"], 4),
        "test_utterances": summary["config"]["num_test_utterances"],
        "epochs": len(epoch_seconds),
        "training_seconds": round(sum(epoch_seconds), 1),
        "total_wall_seconds": round(total, 1),
        "cores": os.cpu_count(),
        "run_id": summary["run_id"],
        "command": " ".join([".venv/bin/python", *sys.argv]),
    }
    print(json.dumps(result, indent=2))
    print(f"target (digit error rate <= 5%): {'met' if result['test_digit_error_rate'] <= 0.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
