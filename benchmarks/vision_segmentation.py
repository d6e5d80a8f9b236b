"""Benchmark: segmentation (pedestrian vs background) on Penn-Fudan's test split, pretrained backbone vs scratch.

For each backbone initialization (`--set pretrained=true`, then `false`; the same recipe otherwise) and seed:
the served model's pedestrian IoU and Dice, background IoU, mIoU and pixel accuracy on the 34 test photographs
at their original sizes, the per-image mean IoU, the epoch times, the training time, the wall time of the whole
`dlsuite train` run (data, training, evaluation, MLflow logging), its CPU seconds, the machine's load average
before and after, and the command. Target: pedestrian IoU >= 0.80 with the pretrained backbone. The preset (416 px,
40 epochs) takes about 40 minutes a run on 2 cores.

    nice -n 5 .venv/bin/python benchmarks/vision_segmentation.py [--inits pretrained scratch] [--seeds 42]
        [--set key=value ...] [--tracking-uri URI]

Needs the converted backbone (`python -m apps.vision.photos.backbones convert`) and
$DLSUITE_DATA_DIR/penn_fudan_ped (or --data-dir).
"""

import argparse
import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from timing import timed_train  # noqa: E402

TARGET_IOU = 0.80
METRICS = ("test_iou", "test_dice", "test_background_iou", "test_miou", "test_pixel_accuracy", "test_mean_image_iou")


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inits", nargs="+", default=["pretrained", "scratch"], choices=["pretrained", "scratch"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None], help="default: the preset's seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    args = parser.parse_args()

    results = []
    for init in args.inits:
        for seed in args.seeds:
            load_before = os.getloadavg()
            cpu_before = _cpu_seconds()
            run = timed_train("vision", "segmentation", overrides=[f"pretrained={init == 'pretrained'}",
                                                                   *args.overrides],
                              seed=seed, data_dir=args.data_dir, tracking_uri=args.tracking_uri,
                              history_keys=("val_iou", "iou", "loss"))
            metrics = run.summary["metrics"]
            results.append({
                "init": init, "seed": run.summary["config"]["seed"],
                **{name: round(metrics[name], 4) for name in METRICS},
                "epochs": run.epochs, "training_seconds": run.training_seconds,
                "epoch_seconds": [round(seconds, 1) for seconds in run.history["epoch_seconds"]],
                "val_iou_by_epoch": [round(value, 3) for value in run.history["val_iou"]],
                "total_wall_seconds": run.wall_seconds,
                # CPU time of this process (all threads): what the run cost whatever the machine's load
                "cpu_seconds": round(_cpu_seconds() - cpu_before, 1),
                "load_average_before": [round(value, 2) for value in load_before],
                "load_average_after": [round(value, 2) for value in os.getloadavg()],
                "image_size": run.summary["config"]["image_size"], "run_id": run.summary["run_id"],
            })
            print(json.dumps(results[-1]), flush=True)
    pretrained = [result for result in results if result["init"] == "pretrained"]
    summary = {
        "test_iou": {f"{result['init']}/{result['seed']}": result["test_iou"] for result in results},
        "target_met_pretrained": (all(result["test_iou"] >= TARGET_IOU for result in pretrained) if pretrained
                                  else None),
        "cores": os.cpu_count(),
        "command": " ".join(["nice -n 5 .venv/bin/python", *sys.argv]),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
