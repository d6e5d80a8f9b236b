"""Callbacks every task uses: NaN guard, run progress, early stopping, LR on plateau, MLflow logging, and
stopping at a batch boundary on SIGINT/SIGTERM.

Own-loop trainers (RL) drive the same callbacks through `keras.callbacks.CallbackList`.
"""

import contextlib
import math
import signal
import sys
import time
import warnings

import keras

from shared.errors import Interrupted, TrainingDiverged


def fit_verbosity():
    """A progress bar on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def standard_callbacks(monitor, mode, early_stopping_patience, reduce_lr_patience=0, max_seconds=None,
                       learning_rate=None, encoder_learning_rate=None):
    """`max_seconds`: the run's wall-time budget, if it has one: `TimeBudget` anneals the learning rate
    (`learning_rate`, and `encoder_learning_rate` for an encoder's own optimizer) over it and stops training there,
    and the progress line's estimate stops there."""
    budget = [TimeBudget(max_seconds, learning_rate, encoder_learning_rate)] if max_seconds else []
    callbacks = [*budget, NanGuard(), RunProgress(max_seconds=max_seconds)]
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


def weight_averaging(config):
    """`[AveragedWeights()]` when the config averages the weights (`ema_momentum`), else `[]`. It goes in `fit`'s
    callbacks right after BackupAndRestore (which then saves the raw weights and the average as they are) and
    before every callback that reads the weights or the validation metrics at the end of an epoch. Configs
    without the field (`shared.config.FitConfig`, `OptimizerConfig`) do not average."""
    return [AveragedWeights()] if getattr(config, "ema_momentum", None) else []


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """Polyak averaging with an optimizer that keeps the weights' exponential moving average (`use_ema`; see
    `shared.optimizers.get_optimizer`): each validation pass, the epoch-end callbacks after this one (early
    stopping's best weights, checkpoints) and the trained model see the average, while training steps the raw
    weights. It is Keras's `SwapEMAWeights(swap_on_epoch=True)` with one fix: that callback ends training on the
    average only when training reaches its last epoch, this one also when it stops before (a wall-time budget).
    With an encoder's own optimizer (a MultiOptimizer) both optimizers keep and swap their variables' averages."""

    def __init__(self):
        super().__init__(swap_on_epoch=True)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # the average is in the model; the last epoch's is kept for the end of fit
        if self.model.stop_training and epoch < self.params["epochs"] - 1:
            self._finalize_ema_values()  # stopped early: `fit` ends by copying the average in, so make it the average


class TimeBudget(keras.callbacks.Callback):
    """Anneals the learning rate by elapsed wall time (linear warmup, then cosine to zero) and stops training
    once `max_seconds` have passed, so a budgeted run ends with a decayed learning rate whatever the
    machine's speed. A resumed run gets a fresh budget.

    The optimizer's learning rate must be a number, not a schedule (`shared.optimizers.build_optimizer` makes it
    one when the config has a budget). An encoder's own optimizer (named "encoder" inside a MultiOptimizer)
    anneals from `encoder_learning_rate`, every other from `learning_rate`.
    """

    def __init__(self, max_seconds, learning_rate, encoder_learning_rate=None, warmup_fraction=0.02,
                 clock=time.monotonic):
        super().__init__()
        self.max_seconds, self.learning_rate, self.warmup_fraction = max_seconds, learning_rate, warmup_fraction
        self.encoder_learning_rate, self.clock = encoder_learning_rate, clock
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = self.clock()

    def fraction(self):
        return min(1.0, (self.clock() - self.start) / self.max_seconds)

    def scale(self, fraction):
        """The learning rate's factor at `fraction` of the budget: linear warmup, then cosine (never below 1%)."""
        if fraction < self.warmup_fraction:
            return max((fraction + 1e-3) / self.warmup_fraction, 0.01)
        cosine = 0.5 * (1 + math.cos(math.pi * (fraction - self.warmup_fraction) / (1 - self.warmup_fraction)))
        return max(cosine, 0.01)

    def on_train_batch_begin(self, batch, logs=None):
        scale = self.scale(self.fraction())
        for optimizer in getattr(self.model.optimizer, "optimizers", [self.model.optimizer]):
            base = self.encoder_learning_rate if optimizer.name == "encoder" else self.learning_rate
            optimizer.learning_rate.assign(base * scale)

    def on_train_batch_end(self, batch, logs=None):
        if self.fraction() >= 1.0:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["train_seconds"] = self.clock() - self.start


class NanGuard(keras.callbacks.Callback):
    """Raise `TrainingDiverged` at the first batch whose loss is NaN or infinite.

    Keras' TerminateOnNaN only stops training: the run then evaluated, exported a NaN model and
    ended FINISHED. Raising ends the MLflow run FAILED with the reason and exports nothing; the
    last checkpoint (from before the divergence) stays. `learning_rate` (the config's) names the
    fix; without it the optimizer's current rate is read.
    """

    def __init__(self, learning_rate=None):
        super().__init__()
        self.learning_rate = learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(self.message(batch, float(loss)))

    def message(self, batch, loss):
        rate = self.learning_rate if self.learning_rate is not None else self._optimizer_learning_rate()
        received = f"loss={loss}" + (f" with learning_rate={rate:g}" if rate is not None else "")
        lower = f"e.g. --set learning_rate={rate / 10:g}" if rate else "with --set learning_rate=..."
        return (f"Training diverged: the loss became {loss} at batch {batch + 1} of epoch {self.epoch + 1}. "
                f"Received: {received}. Expected a finite loss. Fix: lower the learning rate, {lower}. "
                "Nothing was exported.")

    def _optimizer_learning_rate(self):
        """The configured rate: a schedule's peak (what `--set learning_rate` sets), else the current rate."""
        optimizer = getattr(self.model, "optimizer", None)
        schedule = getattr(optimizer, "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            settings = schedule.get_config()
            peak = settings.get("warmup_target") or settings.get("initial_learning_rate")
            if isinstance(peak, (int, float)):
                return float(peak)
        try:
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except Exception:  # noqa: BLE001 - no optimizer on the model (own-loop trainers)
            return None


class RunProgress(keras.callbacks.Callback):
    """One line per epoch with an estimate for the whole run: `epoch 3/11 done in 41 s; about 5 min left`.

    Keras' progress shows one epoch; this adds the elapsed time and the mean epoch time times the
    epochs left, or what is left of `max_seconds` when the run has a wall-time budget that ends sooner.
    The line for an epoch is printed when the next one begins (or training ends), so it follows Keras'
    own metrics line for that epoch.
    """

    def __init__(self, print_fn=None, max_seconds=None):
        super().__init__()
        self.print_fn = print_fn or (lambda line: print(line, flush=True))
        self.max_seconds = max_seconds
        self.durations, self.pending, self._started = [], None, None

    def on_epoch_begin(self, epoch, logs=None):
        self._flush()
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._started is not None:
            self.durations.append(time.perf_counter() - self._started)
            self.pending = epoch

    def on_train_end(self, logs=None):
        self._flush(final=True)

    def _flush(self, final=False):
        if self.pending is None:
            return
        epoch, total = self.pending + 1, (self.params or {}).get("epochs")
        line = f"epoch {epoch}{f'/{total}' if total else ''} done in {format_duration(self.durations[-1])}"
        if final or not total or epoch >= total:
            line += f"; training took {format_duration(sum(self.durations))}"
        else:
            left = (total - epoch) * sum(self.durations) / len(self.durations)
            if self.max_seconds:
                left = min(left, max(0.0, self.max_seconds - sum(self.durations)))
            line += f"; about {format_duration(left)} left"
        self.pending = None
        self.print_fn(line)


def format_duration(seconds):
    """41 s, 5 min, 1 h 20 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"


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
    """Log every epoch's metrics (and the learning rate and epoch time) to the active MLflow run, at step `epoch`.

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
        step = int(metrics.get(self.step_key, epoch)) if self.step_key else epoch  # no `epoch` metric: it is the step
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


class StopOnSignal(keras.callbacks.Callback):
    """SIGINT or SIGTERM during training raises `Interrupted` at the next batch boundary, not wherever the
    signal lands.

    An exception raised by a signal handler at an arbitrary point of `model.fit` (inside a tf.function's
    Python wrapper, while the tf.data iterator is being created) can leave TensorFlow's native state
    inconsistent: SIGTERM at the start of an epoch aborted the process ("free(): invalid next size") in
    about one run of three. Here the handler only records the signal; the next `on_*_batch_end` or
    `on_epoch_end` raises, between two steps, so the run ends KILLED through the normal path and
    `--resume` continues it. A second signal while one is pending raises at once (an impatient Ctrl-C).
    A SIGINT that the process ignores (a background job) stays ignored.

        with StopOnSignal().installed() as stop:
            model.fit(..., callbacks=[..., stop])
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.pending = None

    def handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.pending:
            raise Interrupted(name)
        self.pending = name

    def check(self, *args, **kwargs):
        if self.pending:
            raise Interrupted(self.pending)

    on_train_batch_end = on_test_batch_end = on_predict_batch_end = on_epoch_end = check

    @contextlib.contextmanager
    def installed(self):
        """Handle the signals inside the block; a signal after the last batch raises when the block ends."""
        previous = {}
        for signum in self.SIGNALS:
            current = signal.getsignal(signum)
            if current in (signal.SIG_IGN, None):
                continue
            previous[signum] = signal.signal(signum, self.handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.check()
