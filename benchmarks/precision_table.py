"""Issue 29's table: every task that takes the `precision` key, trained in float32 and mixed_bfloat16 with the
same seeds, side by side in one benchmark run (each task through `benchmarks/precision.py`, in a process of its
own, one after the other).

Per task and precision it prints the mean over the seeds of the median epoch time, the time to the common quality
(the first epoch whose validation monitor reaches the worst final value among that task's runs), the final test
headline metric, and the speed-up of bfloat16 on both times; every seed's row is in the JSON each task prints.
The budgets are shortened presets (a few epochs of the benchmark's own settings): the per-epoch speed is the
benchmark's, the quality is the quality after those epochs. Run it on a machine with nothing else running: the
load average before each run is printed beside it.

    nice -n 5 .venv/bin/python benchmarks/precision_table.py --seeds 1 2                # every task, ~2 hours
    .venv/bin/python benchmarks/precision_table.py --only vision/classification nlp/text_classification --seeds 1
    .venv/bin/python benchmarks/precision_table.py --smoke --only speech/digits --seeds 1   # the smoke presets
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (app, task, preset, overrides): the benchmark presets cut to a few epochs.
TASKS = (
    ("vision", "classification", "default", ["epochs=3"]),
    ("vision", "segmentation", "default", ["epochs=3"]),
    ("vision", "diffusion", "default", ["epochs=1", "max_train_examples=12800", "eval_samples=500"]),
    ("nlp", "text_classification", "transformer", ["epochs=3"]),
    ("nlp", "translation", "default", ["epochs=2"]),
    ("nlp", "language_model", "default", ["epochs=2"]),
    ("speech", "digits", "default", ["epochs=5"]),
    ("recommender", "rating", "default", []),
    ("recommender", "retrieval", "default", []),
)
# Not in the table, and why (README, "Mixed precision").
LEFT_OUT = {
    "vision/detection": "refuses 16 bits: keras-hub's RetinaNet decodes bfloat16 box deltas against float32 anchors",
    "vision/autoencoder, vae, gan": "their train_steps apply unscaled gradients by hand: float32 only",
    "gaming_rl/*": "no precision key: small networks stepped one environment batch at a time",
}


def run_task(app, task, preset, overrides, args):
    command = [sys.executable, str(REPO / "benchmarks" / "precision.py"), app, "--task", task, "--preset", preset,
               "--precisions", *args.precisions, "--seeds", *map(str, args.seeds)]
    for override in overrides:
        command += ["--set", override]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.tracking_uri:
        command += ["--tracking-uri", args.tracking_uri]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        print(f"{app}/{task}: failed (exit {result.returncode}): {result.stderr.strip()[-1500:]}", flush=True)
        return None
    report = json.loads(lines[-1])
    report.update(app=app, task=task, preset=preset, overrides=overrides, wall_seconds=round(seconds))
    return report


def summarize(report, precision):
    runs = [run for run in report["runs"] if run["precision"] == precision]
    headline = report["headline"]
    to_target = [run["seconds_to_target"] for run in runs if run["seconds_to_target"] is not None]
    return {"median_epoch": statistics.mean(run["median_epoch_seconds"] for run in runs),
            "to_target": statistics.mean(to_target) if len(to_target) == len(runs) else None,
            "headline": headline, "quality": [run[headline] for run in runs] if headline else [],
            "load": max(run["load_before"][0] for run in runs)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--only", nargs="+", default=None, metavar="APP/TASK")
    parser.add_argument("--smoke", action="store_true", help="each task's smoke preset, as it is (a quick check)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    args = parser.parse_args()
    known = {f"{app}/{task}" for app, task, _, _ in TASKS}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        parser.error(f"Unknown task. Received: --only {' '.join(unknown)}. "
                     f"Expected some of: {', '.join(sorted(known))}.")
    command = "python benchmarks/precision_table.py " + shlex.join(sys.argv[1:])
    started = time.perf_counter()
    reports = []
    for app, task, preset, overrides in TASKS:
        if args.only and f"{app}/{task}" not in args.only:
            continue
        if args.smoke:
            preset, overrides = "smoke", []
        print(f"== {app}/{task} (preset {preset} {' '.join(overrides)}), load {os.getloadavg()[0]:.1f}", flush=True)
        report = run_task(app, task, preset, overrides, args)
        if report is not None:
            reports.append(report)
            print(json.dumps(report), flush=True)

    base, other = args.precisions[0], args.precisions[-1]
    print("\n| task, preset and budget | precision | median epoch s | to common quality s | test headline (per seed) | "
          "speed-up (epoch, to quality) | load |")
    print("|---|---|---|---|---|---|---|")
    for report in reports:
        first = summarize(report, base)
        for precision in args.precisions:
            row = summarize(report, precision)
            speed = f"{first['median_epoch'] / row['median_epoch']:.2f}x, " + (
                f"{first['to_target'] / row['to_target']:.2f}x" if row["to_target"] and first["to_target"] else "-")
            quality = ", ".join(f"{value:.4f}" for value in row["quality"] if value is not None)
            name = f"{report['app']}/{report['task']}, {report['preset']} {' '.join(report['overrides'])}"
            to_target = "-" if row["to_target"] is None else f"{row['to_target']:.1f}"
            print(f"| {name if precision == base else ''} | {precision} | {row['median_epoch']:.1f} | "
                  f"{to_target} | {row['headline']} {quality} | "
                  f"{'' if precision == base else speed} | {row['load']:.1f} |")
    for name, why in LEFT_OUT.items():
        print(f"not in the table: {name}: {why}")
    print(f"seeds {' '.join(map(str, args.seeds))}; {base} against {other}; wall time "
          f"{time.perf_counter() - started:.0f} s; command: {command}")


if __name__ == "__main__":
    main()
