"""Callbacks every task uses: early stopping, LR on plateau, NaN guard, MLflow logging.

Own-loop trainers (RL) drive the same callbacks through `keras.callbacks.CallbackList`.
"""

import math
import sys
import time
import warnings

import keras


def fit_verbosity():
    """A progress bar on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def standard_callbacks(monitor, mode, early_stopping_patience, reduce_lr_patience=0):
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=early_stopping_patience, restore_best_weights=True,
                verbose=1,
            )
        )
    if reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, patience=reduce_lr_patience,
                                              factor=0.5, verbose=1)
        )
    return callbacks


class ThresholdStopping(keras.callbacks.Callback):
    """Stop once `monitor` has stayed at or beyond `threshold` for `patience` consecutive epochs.

    For RL, "solved" is a threshold on the evaluation return, not a plateau.
    """

    def __init__(self, monitor, threshold, patience=1, mode="max"):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid value for argument mode. Received: mode={mode!r}. Expected 'min' or 'max'.")
        if patience < 1:
            raise ValueError(f"Invalid value for argument patience. Received: patience={patience}. Expected >= 1.")
        self.monitor, self.threshold, self.patience, self.mode = monitor, threshold, patience, mode
        self.streak = 0
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        reached = value >= self.threshold if self.mode == "max" else value <= self.threshold
        self.streak = self.streak + 1 if reached else 0
        if self.streak >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True


class MlflowMetricsLogger(keras.callbacks.Callback):
    """Log every epoch's metrics (and the learning rate and epoch time) to the active MLflow run.

    Logging failures become warnings; training goes on. `step_key` names a logs
    entry to use as the MLflow step instead of the epoch (RL: environment steps).
    """

    def __init__(self, run_id, step_key=None):
        super().__init__()
        self.run_id = run_id
        self.step_key = step_key
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import mlflow

        metrics = {key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in metrics:
            try:
                metrics["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            except Exception:  # noqa: BLE001 - a schedule without a numeric value
                pass
        if self._epoch_start is not None:
            metrics["epoch_seconds"] = time.perf_counter() - self._epoch_start
        step = int(metrics.get(self.step_key, epoch)) if self.step_key else epoch
        metrics["epoch"] = float(epoch)
        try:
            mlflow.tracking.MlflowClient().log_batch(
                self.run_id,
                metrics=[mlflow.entities.Metric(key, value, int(time.time() * 1000), step)
                         for key, value in metrics.items()],
            )
        except Exception as error:  # noqa: BLE001 - tracking must never break training
            warnings.warn(f"MLflow metric logging failed at epoch {epoch}; training continues: {error}")


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


class TrialPruning(keras.callbacks.Callback):
    """Report `monitor` to an Optuna trial after each epoch; stop training when its pruner says so.

    Training stops the way early stopping does, so the run still ends FINISHED with what it
    learned; `pruned_at` (the epoch, else None) tells `dlsuite tune` to record the trial as pruned.
    """

    def __init__(self, trial, monitor):
        super().__init__()
        self.trial, self.monitor, self.pruned_at = trial, monitor, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            self.model.stop_training = True
