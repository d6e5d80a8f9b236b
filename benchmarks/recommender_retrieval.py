"""Benchmark: two-tower retrieval on MovieLens 100K with the Microsoft Recommenders protocol, beside two baselines.

The protocol (the retrieval preset): each user's ratings split 75/25 at random (split_seed 42), every
rating an implicit interaction, the top 10 among the movies the user did not rate in train. Printed
per run: Precision@10, Recall@10, NDCG@10, MAP@10 (÷ min(|R|, 10)), MAP (÷ |R|, the MAP column of
the Recommenders table), catalogue coverage, epochs, training time and wall time, for
- the two towers (the retrieval task's default preset), once per `--seeds` (the split stays the same);
- most popular: the movies rated most often in train, computed by the same evaluation in each run;
- MF from the rating task (`--mf-preset`, default: the rating default), trained on the same split and
  ranked by predicted rating (its evaluation on split=per_user ranks every unrated movie).
Then the command and whether the target (NDCG@10 >= 0.45 and Recall@10 >= 0.22, every seed) is met.
The Recall@k / NDCG@k curves of all three (k = 1..50) are logged to the first two-tower run as
`ranking_curves_vs_baselines.png`. Exports are skipped unless `--export` (the tests check them).

    .venv/bin/python benchmarks/recommender_retrieval.py [--seeds 42 1 2] [--set key=value ...]
        [--mf-preset default] [--mf-set key=value ...] [--no-mf] [--data-dir DIR] [--tracking-uri URI] [--export]
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

TARGET = {"ndcg_at_10": 0.45, "recall_at_10": 0.22}
METRICS = ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "map", "coverage_at_10")


def train_run(task, preset, overrides, seed, args):
    run = timed_train("recommender", task, preset=preset, overrides=overrides, seed=seed, data_dir=args.data_dir,
                      tracking_uri=args.tracking_uri, export=args.export)
    timing = {"epochs": run.epochs, "training_seconds": run.training_seconds, "total_wall_seconds": run.wall_seconds,
              "run_id": run.summary["run_id"], "seed": run.summary["config"]["seed"]}
    return run.summary, timing


def pick(metrics, prefix):
    return {name: round(metrics[f"{prefix}{name}"], 4) for name in METRICS}


def curves_of(run_id, prefixes):
    from shared import tracking

    table = tracking.load_artifact_json(run_id, "ranking_curves.json")
    columns = table["columns"] if "columns" in table else None
    if columns:  # MLflow's table format: {"columns": [...], "data": [[...], ...]}
        table = {column: [row[index] for row in table["data"]] for index, column in enumerate(columns)}
    return {name: {"recall": table[f"{prefix}recall"], "ndcg": table[f"{prefix}ndcg"]}
            for name, prefix in prefixes.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None], help="model seeds (default: the preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--mf-preset", default="default")
    parser.add_argument("--mf-set", dest="mf_overrides", action="append", default=[])
    parser.add_argument("--no-mf", action="store_true", help="skip the MF baseline")
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/movielens_100k")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    parser.add_argument("--export", action="store_true", help="also export and verify each run's SavedModel")
    args = parser.parse_args()

    started = time.perf_counter()
    rows, curves = [], {}
    for seed in args.seeds:
        summary, timing = train_run("retrieval", "default", args.overrides, seed, args)
        rows.append({"model": "two towers", **pick(summary["metrics"], "test_"), **timing})
        print(json.dumps(rows[-1]), flush=True)
        if len(rows) == 1:
            first = summary
            rows.append({"model": "most popular", **pick(summary["metrics"], "test_popular_"),
                         "run_id": timing["run_id"]})
            print(json.dumps(rows[-1]), flush=True)
            curves.update(curves_of(timing["run_id"], {"two towers": "two_tower_", "most popular": "most_popular_"}))
    if not args.no_mf:
        config = first["config"]
        split = [f"split={config['split']}", f"test_fraction={config['test_fraction']}",
                 f"split_seed={config['split_seed']}", f"validation_fraction={config['validation_fraction']}"]
        summary, timing = train_run("rating", args.mf_preset, [*split, *args.mf_overrides], None, args)
        rows.append({"model": f"MF (rating task, preset {args.mf_preset})", **pick(summary["metrics"], "test_"),
                     **timing, "test_rmse": round(summary["metrics"]["test_rmse"], 4)})
        print(json.dumps(rows[-1]), flush=True)
        curves.update(curves_of(timing["run_id"], {"MF": ""}))
    _log_curves(rows[0]["run_id"], curves)

    towers = [row for row in rows if row["model"] == "two towers"]
    met = [all(row[name] >= bound for name, bound in TARGET.items()) for row in towers]
    print(json.dumps({"rows": rows, "total_wall_seconds": round(time.perf_counter() - started, 1),
                      "cores": os.cpu_count(), "command": " ".join([".venv/bin/python", *sys.argv])}, indent=2))
    print(f"target (two towers NDCG@10 >= {TARGET['ndcg_at_10']} and Recall@10 >= {TARGET['recall_at_10']}): "
          f"{'met' if all(met) else 'NOT met'} ({sum(met)} of {len(met)} seeds)")


def _log_curves(run_id, curves):
    import matplotlib.pyplot as plt
    import mlflow

    from apps.recommender.plots import ranking_curves

    figure = ranking_curves(curves)
    try:
        mlflow.tracking.MlflowClient().log_figure(run_id, figure, "ranking_curves_vs_baselines.png")
    except Exception as error:  # noqa: BLE001 - the printed numbers are the benchmark's result
        print(f"could not log the curves figure: {error}", file=sys.stderr)
    plt.close(figure)


if __name__ == "__main__":
    main()
