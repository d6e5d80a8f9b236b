"""CartPole-v1 benchmark: DQN and PPO, 5 seeds each, greedy evaluation over 100 episodes.

Each seed trains with the task's `default` preset (the same `Task.fit` loop as `dlsuite train`,
stopping once the periodic 20-episode greedy evaluation reaches 475), then plays 100 greedy test
episodes through the serving endpoint. "Steps to 475" counts only if those 100 episodes average
at least 475. MLflow logging and SavedModel export are left out to time the learning itself.

    .venv/bin/python benchmarks/gaming_rl_cartpole.py [--seeds 0 1 2 3 4] [--tasks cartpole-dqn cartpole-ppo]
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_seed(task, seed, overrides=()):
    """Train one seed of `task` (default preset) and test it; returns a dict of numbers."""
    from timing import fit_in_process

    fitted = fit_in_process("gaming_rl", task, overrides=overrides, seed=seed)
    config, logs, wall_seconds = fitted.config, fitted.logs, fitted.train_seconds
    report = fitted.runner.evaluate(fitted.serving(), fitted.data, dataclasses.replace(config, gif_max_frames=0))
    return {"seed": seed, "env_steps": int(logs["env_steps"]), "wall_seconds": wall_seconds,
            "train_seconds": logs["train_seconds"], "steps_per_second": logs["env_steps"] / logs["train_seconds"],
            "eval_return_mean": logs["eval_return_mean"], "test_return_mean": report.metrics["test_return_mean"],
            "test_return_std": report.metrics["test_return_std"], "solved_threshold": config.solved_threshold}


def print_table(task, results, target):
    print(f"\n{task}: target {target} (greedy, 100 test episodes)")
    print(f"{'seed':>4} {'env steps':>10} {'test return':>14} {'reached':>8} {'wall s':>8} {'train s':>8} {'steps/s':>8}")
    for result in results:
        reached = result["test_return_mean"] >= target
        print(f"{result['seed']:>4} {result['env_steps']:>10} {result['test_return_mean']:>8.1f} ± "
              f"{result['test_return_std']:<5.1f}{'yes' if reached else 'no':>8} {result['wall_seconds']:>8.1f} "
              f"{result['train_seconds']:>8.1f} {result['steps_per_second']:>8.0f}")
    reached = [result for result in results if result["test_return_mean"] >= target]
    steps = [result["env_steps"] if result in reached else float("inf") for result in results]
    print(f"reached in {len(reached)}/{len(results)} seeds; median env steps {statistics.median(steps)}; "
          f"median wall {statistics.median(r['wall_seconds'] for r in results):.1f} s; "
          f"median steps/s {statistics.median(r['steps_per_second'] for r in results):.0f}")


def main(argv=None, default_tasks=("cartpole-dqn", "cartpole-ppo"), script=__file__):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tasks", nargs="+", default=list(default_tasks))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for task in args.tasks:
        results = []
        for seed in args.seeds:
            results.append(run_seed(task, seed, args.overrides))
            print(f"# {task} seed {seed}: {results[-1]}", flush=True)
        print_table(task, results, results[0]["solved_threshold"])
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")
    print("command: .venv/bin/python " + " ".join([os.path.relpath(script, Path(script).parents[1]),
                                                   *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    main()
