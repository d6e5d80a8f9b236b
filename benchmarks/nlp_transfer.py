"""Benchmark: transfer (all-MiniLM-L6-v2 frozen, then fine-tuned) against the best from-scratch model, same split.

The split is the seed's (stratified, `apps.nlp.data`), so one `--seed` gives all three runs the same train,
validation and test messages. Runs, through `pipelines.train.train`: `transfer --preset default` (frozen encoder,
a head on mean-pooled states), `transfer --preset fine_tune` (everything trains, the encoder at
`encoder_learning_rate`), and `text_classification --preset <--scratch-model>`. Printed per run: accuracy, MCC,
spam precision/recall/F1, average precision, epochs, training and wall time (the machine is shared: the load
average is printed beside them).

    .venv/bin/python benchmarks/nlp_transfer.py [--seed 42] [--scratch-model cnn] [--modes default fine_tune]
        [--set key=value ...] [--data-dir DIR] [--tracking-uri URI] [--export]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.nlp_text_classification import common_arguments, train_run  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scratch-model", default="cnn", help="text_classification preset to compare with (none: skip it)")
    parser.add_argument("--modes", nargs="+", default=["default", "fine_tune"], help="transfer presets")
    common_arguments(parser)
    args = parser.parse_args()

    started = time.perf_counter()
    rows = []
    runs = [("transfer", preset) for preset in args.modes]
    if args.scratch_model != "none":
        runs.append(("text_classification", args.scratch_model))
    for task, preset in runs:
        metrics, timing = train_run(task, preset, args.overrides if task == "transfer" else [], args.seed, args)
        rows.append({"task": task, "preset": preset, **metrics, **timing})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"rows": rows, "total_wall_seconds": round(time.perf_counter() - started, 1),
                      "cores": os.cpu_count(), "command": " ".join([".venv/bin/python", *sys.argv])}, indent=2))


if __name__ == "__main__":
    main()
