"""Benchmark: sample quality of `vision/gan` and `vision/diffusion` on Fashion-MNIST, with wall times.

Steps, in order (each prints one JSON line):
1. classifier: the feature extractor of `apps/vision/generative/quality.py`, a `vision/classification` run on the same
   dataset, trained once and then found again by its tag `dlsuite.quality_classifier=<dataset>` (cached by run
   id in the MLflow store; `--classifier-run-id` picks one);
2. yardstick: FID/KID between 10,000 (and 2,000) training images and the 10,000 test images in its feature
   space (FID's bias depends on the sample count: compare a model with the yardstick of its count);
3. one `dlsuite train` per model (`--models gan diffusion`), through the pipeline, with
   `quality_classifier_run` set so the run's own evaluation scores `--samples` generated images (or the model's
   `eval_samples` given with `--set`) against the
   test set: FID, KID, and for conditional models the classifier's accuracy on the images of each class;
   wall time of the whole run and training time (the sum of epoch times).
The load average is printed with every line: the machine is shared.

    nice -n 5 .venv/bin/python benchmarks/vision_generative.py [--models gan diffusion] [--set gan:key=value ...]
        [--classifier-run-id ID] [--tracking-uri URI] [--seed 42]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from timing import timed_train  # noqa: E402

CLASSIFIER_TAG = "dlsuite.quality_classifier"
# The classifier's default preset with fewer epochs (its cosine schedule still decays to 0 at the last one):
# features for FID need a good classifier, not the best one.
CLASSIFIER_OVERRIDES = ("epochs=5",)


def load():
    return [round(value, 2) for value in os.getloadavg()]


def emit(record):
    print(json.dumps({**record, "loadavg": load()}), flush=True)


def find_or_train_classifier(dataset, seed, tracking_uri, run_id=None, data_dir=None):
    """The run id of a finished classifier tagged for `dataset` (the newest), else train one and tag it."""
    import mlflow

    from pipelines.train import train
    from shared import tracking

    uri = tracking.setup(tracking_uri)
    if run_id:
        return run_id, None
    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("dlsuite-vision")
    if experiment is not None:
        found = client.search_runs([experiment.experiment_id],
                                   filter_string=f"tags.`{CLASSIFIER_TAG}` = '{dataset}' and "
                                                 "attributes.status = 'FINISHED'",
                                   order_by=["attributes.start_time DESC"], max_results=1)
        if found:
            return found[0].info.run_id, None
    started = time.perf_counter()
    summary = train("vision", task="classification", preset="default",
                    overrides=[*CLASSIFIER_OVERRIDES, f"dataset={dataset}"], seed=seed, tracking_uri=uri,
                    data_dir=data_dir, export=False, tags={CLASSIFIER_TAG: dataset})
    return summary["run_id"], {"wall_seconds": round(time.perf_counter() - started, 1),
                               "test_accuracy": round(summary["metrics"]["test_accuracy"], 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["gan", "diffusion"], choices=["gan", "diffusion"])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="task:key=value, e.g. gan:epochs=5 or diffusion:conditional=true")
    parser.add_argument("--dataset", default="fashion_mnist", choices=["fashion_mnist", "mnist"])
    parser.add_argument("--classifier-run-id", default=None)
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    parser.add_argument("--data-dir", default=None,
                        help="as `dlsuite train --data-dir`; default: $DLSUITE_DATA_DIR/<dataset>, else the system "
                             "copy")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--samples", type=int, default=10_000, help="generated images scored per model")
    parser.add_argument("--skip-yardstick", action="store_true")
    parser.add_argument("--yardstick-counts", type=int, nargs="+", default=[10_000, 2_000],
                        help="training images compared with the test set, one yardstick per count")
    args = parser.parse_args()

    classifier_run, trained = find_or_train_classifier(args.dataset, args.seed, args.tracking_uri,
                                                       args.classifier_run_id, args.data_dir)
    emit({"step": "classifier", "run_id": classifier_run, "trained_now": trained})

    from apps.vision.classification import data as vision_data
    from apps.vision.generative import quality

    if not args.skip_yardstick:
        started = time.perf_counter()
        classifier = quality.load_classifier(classifier_run)
        arrays = vision_data.load_arrays(args.dataset, vision_data.resolve_source(args.dataset, args.data_dir))
        test_images, test_labels = arrays["test"]
        accuracy = float((classifier.predict(test_images) == test_labels).mean())
        test_features = classifier.features(test_images)
        for count in args.yardstick_counts:  # FID's bias depends on the sample count: one yardstick per count used
            yardstick = quality.real_vs_real(classifier, arrays["train"][0], test_images, count=count, seed=args.seed,
                                             test_features=test_features)
            emit({"step": "yardstick", "train_images": count, "test_images": len(test_images),
                  "classifier_run": classifier_run, "classifier_test_accuracy": round(accuracy, 4),
                  **{key: round(value, 5) for key, value in yardstick.items() if "class_accuracy" not in key},
                  "seconds": round(time.perf_counter() - started, 1)})

    for model in args.models:
        overrides = [f"quality_classifier_run={classifier_run}", f"eval_samples={args.samples}",
                     f"dataset={args.dataset}"]  # `--set model:key=value` pairs come after: they win
        overrides += [pair.split(":", 1)[1] for pair in args.overrides if pair.startswith(f"{model}:")]
        run = timed_train("vision", model, preset="default", overrides=overrides, seed=args.seed,
                          data_dir=args.data_dir, tracking_uri=args.tracking_uri)
        metrics = run.summary["metrics"]
        emit({"step": model, "run_id": run.summary["run_id"], "overrides": overrides,
              "fid": round(metrics["test_fid"], 3), "kid": round(metrics["test_kid"], 5),
              "kid_std": round(metrics["test_kid_std"], 5),
              **({"class_accuracy": round(metrics["test_class_accuracy"], 4),
                  "class_accuracy_by_class": [round(metrics[f"test_class_accuracy_{k}"], 3) for k in range(10)]}
                 if "test_class_accuracy" in metrics else {}),
              "sample_seconds": round(metrics.get("test_sample_seconds", float("nan")), 1),
              "epochs": run.epochs, "training_seconds": run.training_seconds, "wall_seconds": run.wall_seconds})
    print("command:", " ".join(["nice -n 5 .venv/bin/python", *sys.argv]),
          f"(seed {args.seed}; cores {os.cpu_count()})")


if __name__ == "__main__":
    main()
