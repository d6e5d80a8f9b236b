"""Fraud detection: raw transaction fields and the aggregates in, `fraud_score` and `is_fraud` out.

`fit` follows the handbook's prequential validation (`apps/fraud/data.py`): a model of the same config is
trained on each validation fold's training period with early stopping on its validation period; the served
model is then trained on the training period for the number of epochs the folds chose, and the folds' scores
on their validation periods (honest, out-of-time scores) pick the decision threshold in `after_fit`.
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from apps.fraud import data as fraud_data
from apps.fraud import features, metrics, models
from apps.fraud import plots as fraud_plots
from shared import callbacks as shared_callbacks
from shared.app import DataSource, Endpoint, Report, Task
from shared.errors import DataError

UNSUPERVISED = ("autoencoder", "vae")


class DetectionTask(Task):
    app = "fraud"
    name = "detection"

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        folder, _layout, _files = fraud_data.check(config, data_dir)
        return DataSource.files(folder)

    def build_data(self, config, source):
        return fraud_data.build(config, source)

    # === Model ===

    def build_model(self, config, data):
        if data.train_window is None or not len(data.train_window):
            raise DataError(f"No transactions in the training period. Received: train_start={config.train_start}, "
                            f"train_end={config.train_end}. Expected training dates inside the data; fix them with "
                            "--set train_start=YYYY-MM-DD --set train_end=YYYY-MM-DD.")
        return models.build(config, data.train_window.inputs)

    def monitor_of(self, config):
        return ("val_loss", "min") if config.model in UNSUPERVISED else ("val_average_precision", "max")

    def class_weight(self, config, data):
        """Inverse class frequencies (balanced), with `imbalance=class_weight` for the classifiers."""
        if config.imbalance != "class_weight" or config.model in UNSUPERVISED:
            return None
        rate = float(data.train_window.labels.mean())
        return {0: 0.5 / (1 - rate), 1: 0.5 / max(rate, 1e-6)}

    def fit(self, model, data, config, callbacks, checkpoint_dir):
        """Validate prequentially (`validate`), then train the served model for the epochs the folds chose.
        The folds' scores on their validation periods stay in `data.validation_scores` for `after_fit`."""
        epochs, data.validation_scores = self.validate(data, config)
        backup = keras.callbacks.BackupAndRestore(str(checkpoint_dir), delete_checkpoint=False)
        model.fit(data.train, epochs=epochs, shuffle=False, class_weight=self.class_weight(config, data),
                  callbacks=[backup, *shared_callbacks.weight_averaging(config), shared_callbacks.NanGuard(),
                             *callbacks], verbose=shared_callbacks.fit_verbosity())

    def validate(self, data, config):
        """Train a model of the same config on each fold's training period, with early stopping on its validation
        period. Returns the epochs the folds chose (their mean) and `[(validation Window, its scores)]`."""
        monitor, mode = self.monitor_of(config)
        unsupervised = config.model in UNSUPERVISED
        best_epochs, validation_scores = [], []
        for number, (train, validation) in enumerate(data.folds):
            fold_model = models.build(config, train.inputs)
            history = fold_model.fit(
                fraud_data.dataset(train, config, shuffle=True, genuine_only=unsupervised),
                validation_data=fraud_data.dataset(validation, config, genuine_only=unsupervised),
                epochs=config.epochs, shuffle=False, class_weight=self.class_weight(config, data),
                callbacks=[*shared_callbacks.weight_averaging(config),
                           *shared_callbacks.standard_callbacks(monitor, mode, config.early_stopping_patience)],
                verbose=shared_callbacks.fit_verbosity())
            values = history.history[monitor]
            best = int(np.argmin(values) if mode == "min" else np.argmax(values)) + 1
            print(f"dlsuite: validation fold {number} ({train.first_day} ... {train.last_day} -> "
                  f"{validation.first_day} ... {validation.last_day}): best {monitor} {values[best - 1]:.4f} at "
                  f"epoch {best}", flush=True)
            best_epochs.append(best if config.early_stopping_patience else config.epochs)
            validation_scores.append((validation, self.scores(fold_model, validation)))  # best weights restored
        return (int(round(np.mean(best_epochs))) if best_epochs else config.epochs), validation_scores

    @staticmethod
    def scores(model, window, batch_size=4096):
        dataset = tf.data.Dataset.from_tensor_slices(window.inputs).batch(batch_size)
        return np.concatenate([np.asarray(models.fraud_score(model(batch, training=False))) for batch in dataset])

    def after_fit(self, model, data, config):
        """The decision threshold: the alert rate `config.threshold_rule` chooses on the folds' out-of-time
        validation scores, as a score of the served model on the latest transactions before the test (the
        delay period: seen, not yet labelled). The rate carries over between models; a fold model's score does
        not (each model has its own scale)."""
        windows = [window for window, _scores in data.validation_scores]
        if not windows:
            raise DataError("No validation period with transactions: the threshold cannot be chosen. Received: "
                            f"train_start={config.train_start} with delay_days={config.delay_days} and validation_days="
                            f"{config.validation_days}. Expected data {config.delay_days + config.validation_days} "
                            "days and more before train_start.")
        scores = np.concatenate([scores for _window, scores in data.validation_scores])
        labels = np.concatenate([window.labels for window in windows])
        days = np.concatenate([window.days for window in windows])
        chosen = metrics.choose_threshold(labels, scores, days, config.threshold_rule, config.target_precision,
                                          config.alerts_per_day)
        validation, _per_day = metrics.report(labels, scores, np.concatenate([window.customers for window in windows]),
                                              days, scores >= chosen, config.top_k, prefix="validation_")
        alert_rate = float(np.mean(scores >= chosen))
        recent = np.sort(self.scores(model, data.recent))[::-1]
        threshold = float(recent[min(len(recent) - 1, max(0, int(round(alert_rate * len(recent))) - 1))])
        return {"threshold": threshold, "alert_rate": alert_rate, "validation_threshold": chosen,
                "threshold_period": [str(data.recent.first_day), str(data.recent.last_day)],
                "validation_metrics": validation}

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        threshold = float(info["threshold"])
        specs = [tf.TensorSpec(tensor.shape, tensor.dtype, name=name) for name, tensor in
                 models.serving_inputs(config).items()]

        def serve(**inputs):
            with tf.control_dependencies(check_serving_inputs(inputs)):
                score = tf.identity(models.fraud_score(model(inputs, training=False)))
            return {"fraud_score": score, "is_fraud": score >= threshold}

        return {"serving_default": Endpoint(named_arguments(serve, [spec.name for spec in specs]), specs)}

    def example_inputs(self, data):
        return {key: value[:16] for key, value in data.test.inputs.items()}

    def evaluate(self, serving, data, config):
        test = data.test
        outputs = serving.batched(4096, **test.inputs)
        scores, flagged = outputs["fraud_score"], outputs["is_fraud"].astype(bool)
        threshold = float(scores[flagged].min()) if flagged.any() else float(scores.max())  # the served decision
        result, per_day = metrics.report(test.labels, scores, test.customers, test.days, flagged, config.top_k)
        figures = {"precision_recall_curve.png": fraud_plots.precision_recall(test.labels, scores, threshold),
                   "roc_curve.png": fraud_plots.roc(test.labels, scores),
                   "score_histograms.png": fraud_plots.score_histograms(test.labels, scores, threshold),
                   f"card_precision_top_{config.top_k}_per_day.png": fraud_plots.per_day(per_day, config.top_k)}
        tables = {f"card_precision_top_{config.top_k}_per_day.json": {"day": list(per_day),
                                                                       "card_precision": list(per_day.values())}}
        return Report(metrics=result, figures=figures, tables=tables)

    def custom_objects(self):
        return dict(models.CUSTOM_OBJECTS)


def named_arguments(function, names):
    """`function(**inputs)` as a function of the explicit arguments `names` (how signatures name their inputs)."""
    def call(*args, **kwargs):
        return function(**dict(zip(names, args)), **kwargs)

    call.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names])
    return call


def check_serving_inputs(inputs):
    """Assertions a request must pass (TensorFlow's InvalidArgumentError: `dlsuite serve` answers 400)."""
    checks = [tf.debugging.Assert(tf.reduce_all(tf.strings.regex_full_match(inputs["tx_datetime"],
                                                                            features.DATETIME_PATTERN)),
                                  ["tx_datetime must be YYYY-MM-DD HH:MM:SS. Received:", inputs["tx_datetime"]],
                                  summarize=4)]
    for name in ("tx_amount", *features.AGGREGATES, "history_tx_amount"):
        if name in inputs:
            value = inputs[name]
            ok = tf.reduce_all(tf.math.is_finite(value) & (value >= 0))
            if "risk" in name:
                ok = ok & tf.reduce_all(value <= 1)
            checks.append(tf.debugging.Assert(ok, [f"{name} must be finite and >= 0"
                                                   f"{' and <= 1' if 'risk' in name else ''}. Received:", value],
                                              summarize=4))
    if "history_tx_datetime" in inputs:
        history = inputs["history_tx_datetime"]
        valid = tf.strings.regex_full_match(history, features.DATETIME_PATTERN) | (history == "")
        message = "history_tx_datetime must hold YYYY-MM-DD HH:MM:SS or an empty string (no transaction). Received:"
        checks.append(tf.debugging.Assert(tf.reduce_all(valid), [message, history], summarize=4))
    return checks
