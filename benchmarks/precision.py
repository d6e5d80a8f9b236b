"""Benchmark: one task trained in each precision (`--set precision=...`), same seeds, side by side.

For each seed and precision: the median epoch time (the first epoch, which traces and compiles, apart), the
training time, the time to the benchmark's quality (the first epoch whose validation monitor reaches `--target`;
default: the worst final validation value among the runs, so every run reaches it), the final test headline metric,
the run's wall time and the machine's load average before and after (the timings mean little on a loaded machine).

    nice -n 5 .venv/bin/python benchmarks/precision.py vision --preset default --set epochs=2
    nice -n 5 .venv/bin/python benchmarks/precision.py nlp --task classification --preset smoke \\
        --precisions float32 mixed_bfloat16 --seeds 1 2
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from timing import timed_train  # noqa: E402


def time_to_target(history, monitor, mode, target):
    """Seconds of training until the validation monitor first reaches `target` (None: never)."""
    elapsed = 0.0
    for seconds, value in zip(history["epoch_seconds"], history[monitor]):
        elapsed += seconds
        if (value >= target) if mode == "max" else (value <= target):
            return round(elapsed, 1)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app")
    parser.add_argument("--task", default=None)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None], help="default: the preset's seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--target", type=float, default=None, help="the validation monitor's quality to time")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    args = parser.parse_args()

    from pipelines import catalog
    from pipelines.train import resolve_config

    task_name, spec = catalog.task_spec(args.app, args.task)
    runner = catalog.load_task(spec)
    config = resolve_config(spec, args.preset, overrides=args.overrides)
    monitor, mode = runner.monitor_of(config)
    headline, _ = runner.headline_metric(config)

    runs = []
    for seed in args.seeds:
        for precision in args.precisions:
            load_before = os.getloadavg()
            run = timed_train(args.app, task_name, preset=args.preset, seed=seed, data_dir=args.data_dir,
                              overrides=[*args.overrides, f"precision={precision}"], tracking_uri=args.tracking_uri,
                              history_keys=(monitor,))
            epochs = run.history["epoch_seconds"]
            runs.append({"precision": precision, "seed": run.summary["config"]["seed"], "epochs": run.epochs,
                         "first_epoch_seconds": round(epochs[0], 1),
                         "median_epoch_seconds": round(statistics.median(epochs[1:] or epochs), 1),
                         "training_seconds": run.training_seconds, "wall_seconds": run.wall_seconds,
                         headline: run.summary["metrics"].get(headline), "history": run.history,
                         "final_" + monitor: run.history[monitor][-1] if run.history[monitor] else None,
                         "load_before": [round(value, 1) for value in load_before],
                         "load_after": [round(value, 1) for value in os.getloadavg()],
                         "run_id": run.summary["run_id"]})
    finals = [run["final_" + monitor] for run in runs if run["final_" + monitor] is not None]
    target = args.target if args.target is not None else (min(finals) if mode == "max" else max(finals))
    print(f"\n{args.app}/{task_name}, preset {args.preset} {' '.join(args.overrides)}: {monitor} target {target:.4g}")
    print(f"{'precision':<16}{'seed':>6}{'epoch 1 s':>11}{'median epoch s':>16}{'to target s':>13}"
          f"{'train s':>9}{headline:>24}  load 1/5/15 min before")
    for run in runs:
        run["seconds_to_target"] = time_to_target(run.pop("history"), monitor, mode, target)
        print(f"{run['precision']:<16}{run['seed']:>6}{run['first_epoch_seconds']:>11}"
              f"{run['median_epoch_seconds']:>16}{str(run['seconds_to_target']):>13}{run['training_seconds']:>9}"
              f"{'-' if run[headline] is None else format(run[headline], '.4f'):>24}  {run['load_before']}")
    print(json.dumps({"command": " ".join(sys.argv), "target": target, "monitor": monitor, "headline": headline,
                      "runs": runs}))


if __name__ == "__main__":
    main()
