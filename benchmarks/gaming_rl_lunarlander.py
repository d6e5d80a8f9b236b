"""LunarLander-v3 benchmark: `lunarlander-ppo` (default preset) on seeds 1, 2, 3, each through the whole
`dlsuite train` pipeline (training, MLflow logging, export and its fresh-process check, 100 greedy test episodes
through the serving endpoint).

Training stops early once two consecutive periodic greedy evaluations (20 episodes) reach the preset's
`solved_threshold`, or at `total_env_steps` (1,000,000); the claim is decided by the 100 test episodes.
Prints per seed: env steps, test return mean ± std, wall seconds of `fit` (training plus the periodic
evaluations), training steps/s, and the command that reproduces the table.
Target: test return mean >= 200 on every seed within 1,000,000 env steps.

    .venv/bin/python benchmarks/gaming_rl_lunarlander.py --tracking-uri sqlite:////tmp/lunar.db \\
        [--seeds 1 2 3] [--task lunarlander-ppo] [--set key=value ...]
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

TARGET_RETURN, MAX_ENV_STEPS = 200.0, 1_000_000


def run_seed(task, seed, overrides, tracking_uri):
    import mlflow

    from pipelines.train import train

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as exports:
        summary = train("gaming_rl", task=task, preset="default", overrides=overrides, seed=seed,
                        tracking_uri=tracking_uri, export_root=exports)
    total_seconds = time.perf_counter() - started
    run = mlflow.tracking.MlflowClient().get_run(summary["run_id"])
    metrics = run.data.metrics  # the last value of each: the final evaluation's env steps and clocks
    return {
        "seed": seed, "env_steps": int(metrics["env_steps"]),
        "test_return_mean": round(summary["metrics"]["test_return_mean"], 1),
        "test_return_std": round(summary["metrics"]["test_return_std"], 1),
        "test_return_min": round(summary["metrics"]["test_return_min"], 1),
        "wall_seconds": round(metrics["wall_seconds"], 1), "train_seconds": round(metrics["train_seconds"], 1),
        "steps_per_second": round(metrics["env_steps"] / metrics["train_seconds"]),
        "pipeline_seconds": round(total_seconds, 1), "load_average_1min": round(os.getloadavg()[0], 2),
        "run_id": summary["run_id"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--task", default="lunarlander-ppo", choices=["lunarlander-ppo", "lunarlander-dqn"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    args = parser.parse_args()

    results = []
    for seed in args.seeds:
        results.append(run_seed(args.task, seed, args.overrides, args.tracking_uri))
        print(json.dumps(results[-1]), flush=True)

    print(f"\n{args.task}: target test return >= {TARGET_RETURN:.0f} (100 greedy episodes) within "
          f"{MAX_ENV_STEPS:,} env steps; {os.cpu_count()} cores")
    print(f"{'seed':>4} {'env steps':>10} {'test return':>16} {'met':>4} {'wall s':>8} {'steps/s':>8} {'load':>5}")
    met = 0
    for result in results:
        reached = result["test_return_mean"] >= TARGET_RETURN and result["env_steps"] <= MAX_ENV_STEPS
        met += reached
        print(f"{result['seed']:>4} {result['env_steps']:>10,} {result['test_return_mean']:>8.1f} ± "
              f"{result['test_return_std']:<5.1f} {'yes' if reached else 'no':>4} {result['wall_seconds']:>8.1f} "
              f"{result['steps_per_second']:>8,} {result['load_average_1min']:>5}")
    print(f"target met on {met}/{len(results)} seeds")
    print("command: .venv/bin/python " + " ".join([os.path.relpath(__file__, Path(__file__).parents[1]),
                                                   *sys.argv[1:]]))


if __name__ == "__main__":
    main()
