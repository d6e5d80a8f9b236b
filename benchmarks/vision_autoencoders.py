"""Benchmark: the autoencoder (plain and denoising) and the VAE on all of Fashion-MNIST, default presets.

One `dlsuite train` per model, in turn: the autoencoder's test reconstruction MSE (pixels in [0, 1]; the
denoising one also on test images with the same noise added), the VAE's test ELBO with its reconstruction and
KL parts (nats per image, `elbo_samples` latent samples each), each with its training and wall time, the epoch
times, the load average before and after, the seed and the command that reproduced it.

    nice -n 5 .venv/bin/python benchmarks/vision_autoencoders.py [--models autoencoder denoising vae]
        [--seed 42] [--set key=value ...] [--tracking-uri URI]
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from timing import timed_train  # noqa: E402

MODELS = {  # name -> (task, overrides on top of its default preset)
    "autoencoder": ("autoencoder", ()),
    "denoising": ("autoencoder", ("noise_level=0.2",)),
    "vae": ("vae", ()),
}
REPORTED = ("test_reconstruction_mse", "test_denoising_mse", "test_noisy_input_mse", "test_elbo",
            "test_reconstruction_nats", "test_kl_nats")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--seed", type=int, default=None, help="default: the preset's (42)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    parser.add_argument("--data-dir", default=None,
                        help="as `dlsuite train --data-dir`; default: $DLSUITE_DATA_DIR/fashion_mnist, else the "
                             "system copy")
    args = parser.parse_args()

    results = []
    for name in args.models:
        task, overrides = MODELS[name]
        load_before = os.getloadavg()
        run = timed_train("vision", task, overrides=[*overrides, *args.overrides], seed=args.seed,
                          data_dir=args.data_dir, tracking_uri=args.tracking_uri, history_keys=("val_loss",))
        metrics = run.summary["metrics"]
        results.append({
            "model": name, "task": task, "overrides": [*overrides, *args.overrides],
            "seed": run.summary["config"]["seed"],
            **{key: round(metrics[key], 5) for key in REPORTED if key in metrics},
            "epochs": run.epochs, "training_seconds": run.training_seconds,
            "epoch_seconds": [round(seconds, 1) for seconds in run.history["epoch_seconds"]],
            "val_loss": [round(value, 5) for value in run.history["val_loss"]],
            "total_wall_seconds": run.wall_seconds, "run_id": run.summary["run_id"],
            "load_average_before": [round(value, 1) for value in load_before],
            "load_average_after": [round(value, 1) for value in os.getloadavg()],
        })
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"cores": os.cpu_count(), "command": " ".join([".venv/bin/python", *sys.argv])}, indent=2))


if __name__ == "__main__":
    main()
