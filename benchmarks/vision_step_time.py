"""Where the Fashion-MNIST CNN's training step time goes: precision, steps per execution, XLA, the input pipeline.

The vision classification task (`--preset`, default `default`) is built as `dlsuite train` builds it (the
task's data, its model under the config's `precision`, `Task.fit` with the contract's callbacks), then trained
for `--epochs` epochs once per variant. A variant is `precision:steps_per_execution:xla`, e.g.
`mixed_bfloat16:16:off`; `steps_per_execution` and XLA (`jit_compile`) are set on the compiled model before
`fit` (Keras reads both when it makes the train function). Before the variants, one pass over the training
`tf.data` pipeline alone says what the input side costs an epoch.

Printed per variant: the first epoch (tracing, compiling) and the median of the others, in seconds; the speed-up
of that median over the first variant's; the last epoch's validation accuracy; the load average before.

    nice -n 5 .venv/bin/python benchmarks/vision_step_time.py --epochs 3
    .venv/bin/python benchmarks/vision_step_time.py --epochs 2 --variants float32:1:off mixed_bfloat16:32:off
"""

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_VARIANTS = ("float32:1:off", "float32:16:off", "float32:1:on", "mixed_bfloat16:1:off",
                    "mixed_bfloat16:16:off", "mixed_bfloat16:1:on")


def parse_variant(text):
    """`precision:steps_per_execution:xla` -> (precision, steps, bool); a clear error otherwise."""
    from shared.precision import PRECISIONS

    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in PRECISIONS or not parts[1].isdigit() or int(parts[1]) < 1 \
            or parts[2] not in ("on", "off"):
        raise ValueError(f"Invalid variant. Received: {text!r}. Expected precision:steps_per_execution:xla with "
                         f"precision one of {', '.join(PRECISIONS)}, steps >= 1 and xla on|off, e.g. "
                         "mixed_bfloat16:16:off.")
    return parts[0], int(parts[1]), parts[2] == "on"


def input_pipeline_seconds(dataset):
    """Seconds to draw every batch of one epoch from `dataset` (its preprocessing, shuffling and prefetching)."""
    started = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - started


def run_variant(args, precision, steps, xla):
    from timing import fit_in_process

    def adjust(model):  # Keras reads both when it makes the train function
        model.steps_per_execution, model.jit_compile = steps, xla

    load = os.getloadavg()
    fitted = fit_in_process("vision", "classification", preset=args.preset, seed=args.seed, data_dir=args.data_dir,
                            overrides=[*args.overrides, f"epochs={args.epochs}", f"precision={precision}"],
                            adjust_model=adjust)
    seconds = fitted.epoch_seconds
    return {"variant": f"{precision}:{steps}:{'on' if xla else 'off'}", "first": seconds[0],
            "median": statistics.median(seconds[1:] or seconds), "val_accuracy": fitted.logs["val_accuracy"],
            "load": load[0], "data": fitted.data}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    try:
        variants = [parse_variant(text) for text in args.variants]  # refused (exit 2) before any work
    except ValueError as error:
        parser.error(str(error))
    command = "python benchmarks/vision_step_time.py " + shlex.join(sys.argv[1:])
    started = time.perf_counter()

    results = []
    for precision, steps, xla in variants:
        results.append(run_variant(args, precision, steps, xla))
        print(f"{results[-1]['variant']}: epochs {results[-1]['first']:.1f} s then {results[-1]['median']:.1f} s",
              flush=True)
    pipeline = input_pipeline_seconds(results[0]["data"].train)

    base = results[0]["median"]
    print(f"\nvision/classification, preset {args.preset} {' '.join(args.overrides)}, {args.epochs} epochs, "
          f"seed {args.seed}")
    print(f"the training input pipeline alone: {pipeline:.1f} s an epoch")
    print(f"{'precision:steps_per_execution:xla':<36}{'epoch 1 s':>10}{'median epoch s':>16}{'speed-up':>10}"
          f"{'val_accuracy':>14}{'load 1 min':>12}")
    for result in results:
        print(f"{result['variant']:<36}{result['first']:>10.1f}{result['median']:>16.1f}"
              f"{base / result['median']:>9.2f}x{result['val_accuracy']:>14.4f}{result['load']:>12.1f}")
    print(f"wall time {time.perf_counter() - started:.0f} s; command: {command}")


if __name__ == "__main__":
    main()
