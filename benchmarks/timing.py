"""What every benchmark does around one run: train it through the pipeline (exports in a temporary folder
that is removed afterwards), time it, and read its per-epoch history back from MLflow.

    from timing import timed_train   # benchmarks put their own folder on sys.path
    run = timed_train("fraud", "detection", preset="default", seed=1, tracking_uri=...)
    run.summary["metrics"], run.wall_seconds, run.epochs, run.training_seconds, run.history["val_loss"]
"""

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclasses.dataclass
class TimedRun:
    summary: dict  # what `pipelines.train.train` returns: run_id, metrics, export_dir, config
    wall_seconds: float  # the whole run: data, training, evaluation, logging (and the export, if asked)
    history: dict  # metric key -> its values by step (`epoch_seconds` always)

    @property
    def epochs(self):
        return len(self.history["epoch_seconds"])

    @property
    def training_seconds(self):
        return round(sum(self.history["epoch_seconds"]), 1)


def timed_train(app, task=None, *, preset="default", overrides=(), seed=None, data_dir=None, tracking_uri=None,
                export=False, history_keys=()):
    """One `dlsuite train` run, timed; `history_keys` are read back besides `epoch_seconds`."""
    import mlflow

    from pipelines.train import train

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as exports:
        summary = train(app, task=task, preset=preset, overrides=list(overrides), seed=seed, data_dir=data_dir,
                        tracking_uri=tracking_uri, export_root=exports, export=export)
    wall = time.perf_counter() - started
    client = mlflow.tracking.MlflowClient()
    history = {key: [metric.value for metric in sorted(client.get_metric_history(summary["run_id"], key),
                                                      key=lambda metric: (metric.step, metric.timestamp))]
               for key in ("epoch_seconds", *history_keys)}
    return TimedRun(summary, round(wall, 1), history)


@dataclasses.dataclass
class FittedInProcess:
    runner: object  # the Task
    config: object
    data: object
    model: object
    history: dict  # logged key -> its values by epoch (iteration)
    train_seconds: float  # `Task.fit` alone
    epoch_seconds: list  # each epoch's (iteration's) wall time

    @property
    def logs(self):
        """The last value of each logged key."""
        return {key: values[-1] for key, values in self.history.items()}

    def serving(self):
        """The in-memory endpoints, called as the SavedModel's signatures are."""
        from shared import export

        return export.serve_in_memory(self.runner.endpoints(self.model, self.config, self.data.info))


def fit_in_process(app, task, *, preset="default", overrides=(), seed=None, data_dir=None, adjust_model=None):
    """Train one seed through `Task.fit` only (no MLflow run, no export), to time the learning itself; the model
    is built and trained under the config's `precision`, as `dlsuite train` does. `adjust_model(model)` runs
    between `build_model` and `fit` (a benchmark's variant: steps per execution, XLA)."""
    import keras

    from pipelines import catalog
    from pipelines.train import resolve_config
    from shared import precision

    _name, spec = catalog.task_spec(app, task)
    config = resolve_config(spec, preset, overrides=list(overrides), seed=seed)
    runner = catalog.load_task(spec)
    keras.utils.set_random_seed(config.seed)
    data = runner.build_data(config, runner.check_inputs(config, data_dir))
    history, epoch_seconds = keras.callbacks.History(), []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(epoch_seconds.pop() + time.perf_counter()))
    with precision.applied(config):
        model = runner.build_model(config, data)
        if adjust_model is not None:
            adjust_model(model)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as checkpoint_dir:
            runner.fit(model, data, config, [timer, history], checkpoint_dir)
    return FittedInProcess(runner, config, data, model, history.history, time.perf_counter() - started,
                           epoch_seconds)
