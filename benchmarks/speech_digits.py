"""Benchmark: spoken-digit classification (speech/digits, default preset or `--preset`) on FSDD.

Standard split (takes 0-4 are the 300 test clips): one run per seed, then the
mean and spread of test accuracy. Then one speaker-held-out run per named
speaker and seed (all 500 clips of that speaker are the test set). Prints each run's test
accuracy, errors, training time (sum of epoch times) and wall time of the whole
`dlsuite train` (data, training, evaluation, MLflow logging, export and its
fresh-process check), and the command that reproduced it.
Target: >= 98.5% test accuracy (<= 4 errors of 300), under 2 minutes per run.

    .venv/bin/python benchmarks/speech_digits.py [--seeds 1 2 3] [--held-out-speakers theo] [--set key=value ...]

Leave-one-speaker-out over all six speakers, without the standard split (mean and worst speaker printed):

    .venv/bin/python benchmarks/speech_digits.py --seeds 1 2 3 --skip-standard --preset embedding \
        --held-out-speakers george jackson lucas nicolas theo yweweler

With `--set open_set=true` each run also reports the digit accuracy and the two rejection rates.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_once(preset, overrides, seed, data_dir, tracking_uri):
    import mlflow

    from pipelines.train import train

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as exports:
        summary = train("speech", task="digits", preset=preset, overrides=overrides, seed=seed, data_dir=data_dir,
                        tracking_uri=tracking_uri, export_root=exports)
    total = time.perf_counter() - started
    client = mlflow.tracking.MlflowClient()
    epoch_seconds = [metric.value for metric in client.get_metric_history(summary["run_id"], "epoch_seconds")]
    return {
        "seed": seed,
        "test_accuracy": round(summary["metrics"]["test_accuracy"], 4),
        "test_errors": int(summary["metrics"]["test_errors"]),
        # With --set open_set=true: test_digit_accuracy, test_false_rejection_rate, test_negative_rejection_rate.
        **{key: round(value, 4) for key, value in summary["metrics"].items()
           if key.endswith("_rejection_rate") or key == "test_digit_accuracy"},
        "epochs": len(epoch_seconds),
        "training_seconds": round(sum(epoch_seconds), 1),
        "total_wall_seconds": round(total, 1),
        "run_id": summary["run_id"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="default | embedding | smoke")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--held-out-speakers", nargs="*", default=["theo"])
    parser.add_argument("--skip-standard", action="store_true", help="only the speaker-held-out runs")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/fsdd")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    args = parser.parse_args()

    standard = []
    for seed in [] if args.skip_standard else args.seeds:
        standard.append(run_once(args.preset, args.overrides, seed, args.data_dir, args.tracking_uri))
        print(json.dumps({"split": "standard", **standard[-1]}), flush=True)
    speaker = []
    for seed in args.seeds:  # leave-one-speaker-out on every seed
        for name in args.held_out_speakers:
            overrides = [*args.overrides, "split=speaker", f"held_out_speaker={name}"]
            speaker.append({"held_out_speaker": name, **run_once(args.preset, overrides, seed, args.data_dir,
                                                                  args.tracking_uri)})
            print(json.dumps({"split": "speaker", **speaker[-1]}), flush=True)

    accuracies = [result["test_accuracy"] for result in standard]
    walls = [result["total_wall_seconds"] for result in standard]
    by_seed = {seed: {result["held_out_speaker"]: result["test_accuracy"]
                      for result in speaker if result["seed"] == seed} for seed in args.seeds if speaker}
    result = {
        "standard_split": {
            "test_accuracy_mean": round(statistics.mean(accuracies), 4),
            "test_accuracy_std": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else 0.0,
            "test_accuracy_min": min(accuracies),
            "test_errors": [result["test_errors"] for result in standard],
            "training_seconds": [result["training_seconds"] for result in standard],
            "total_wall_seconds": walls,
        } if standard else None,  # --skip-standard
        "speaker_held_out": {seed: {"accuracy": accuracies, "mean": round(statistics.mean(accuracies.values()), 4),
                                    "worst": min(accuracies.items(), key=lambda item: item[1])}
                             for seed, accuracies in by_seed.items()},
        "cores": os.cpu_count(),
        "command": " ".join([".venv/bin/python", *sys.argv]),
    }
    print(json.dumps(result, indent=2))
    if standard:
        met = min(accuracies) >= 0.985 and max(walls) <= 120
        print(f"target (every seed >= 98.5% and <= 120 s wall per run): {'met' if met else 'NOT met'}")
    if by_seed:
        met = [statistics.mean(accuracies.values()) >= 0.97 and min(accuracies.values()) >= 0.93
               for accuracies in by_seed.values()]
        print(f"speaker target (mean >= 97%, worst >= 93%): met on {sum(met)} of {len(met)} seeds")


if __name__ == "__main__":
    main()
