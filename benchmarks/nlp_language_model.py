"""Benchmark: the character language model on Tiny Shakespeare (first 90% train, last 10% validation, as nanoGPT).

Trains the `language_model` preset(s) through `pipelines.train.train` (the same code as `dlsuite train`)
for their wall-time budget (`max_train_seconds`, 30 minutes in the default preset) and prints, per run:
the validation loss in nats per character as the exported graph scores it (`logits` signature over the
validation text in windows of `sequence_length`), the perplexity, Keras' own `val_loss` of the last epoch,
epochs, training and wall time, and the samples of the fixed prompts. Target: at most 1.60 nats/char within
30 minutes on 2 cores (nanoGPT's small CPU configuration reports about 1.88). The machine may be shared:
wall times include other people's load.

    .venv/bin/python benchmarks/nlp_language_model.py [--presets default lstm] [--seeds 42] [--set key=value ...]
        [--data-dir DIR] [--tracking-uri URI] [--export]
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

TARGET_NATS = 1.60


def train_run(preset, seed, args):
    run = timed_train("nlp", "language_model", preset=preset, overrides=args.overrides, seed=seed,
                      data_dir=args.data_dir, tracking_uri=args.tracking_uri, export=args.export,
                      history_keys=("val_loss", "train_seconds"))
    summary, history, wall, metrics = run.summary, run.history, run.wall_seconds, run.summary["metrics"]
    return {"preset": preset, "seed": summary["config"]["seed"],
            "validation_nats_per_char": round(metrics["validation_loss_nats"], 4),
            "validation_perplexity": round(metrics["validation_perplexity"], 3),
            "keras_val_loss_last_epoch": round(history["val_loss"][-1], 4) if history["val_loss"] else None,
            "epochs": len(history["epoch_seconds"]),
            "training_seconds": round(history["train_seconds"][-1] if history["train_seconds"]
                                      else sum(history["epoch_seconds"]), 1),
            "total_wall_seconds": round(wall, 1), "run_id": summary["run_id"]}


def samples_of(run_id):
    from shared import tracking

    table = tracking.load_artifact_json(run_id, "samples.json")
    if "columns" in table:  # MLflow's table format
        table = {column: [row[index] for row in table["data"]] for index, column in enumerate(table["columns"])}
    return dict(zip(table["prompt"], table["sample"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["default"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None], help="model seeds (default: the preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/tiny_shakespeare")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    parser.add_argument("--export", action="store_true", help="also export and verify each run's SavedModel")
    args = parser.parse_args()

    started, rows = time.perf_counter(), []
    for preset in args.presets:
        for seed in args.seeds:
            rows.append(train_run(preset, seed, args))
            print(json.dumps(rows[-1]), flush=True)
            for prompt, text in samples_of(rows[-1]["run_id"]).items():
                print(f"--- sample ({preset}, prompt {prompt!r}, temperature and top-k of the preset, seed 0) ---\n"
                      f"{text}\n", flush=True)
    print(json.dumps({"rows": rows, "total_wall_seconds": round(time.perf_counter() - started, 1),
                      "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(),
                      "command": " ".join([".venv/bin/python", *sys.argv])}, indent=2))
    met = [row["validation_nats_per_char"] <= TARGET_NATS and row["training_seconds"] <= 1800 + 60 for row in rows]
    print(f"target (validation loss <= {TARGET_NATS} nats/char within 30 minutes of training): "
          f"{'met' if all(met) else 'NOT met'} ({sum(met)} of {len(met)} runs)")


if __name__ == "__main__":
    main()
