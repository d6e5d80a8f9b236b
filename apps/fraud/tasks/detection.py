"""Fraud detection: raw transaction fields and the aggregates in, `fraud_score` and `is_fraud` out.

Inside the contract (`shared/app.py`): the default `fit` trains on the training period with the validation
period (the week after its delay, `apps/fraud/data.py`) as validation data. `metric_callbacks` scores that
period each epoch with the model being trained and logs `val_average_precision`, `val_auc_roc` and
`val_card_precision_top_<k>`; early stopping and `dlsuite tune` watch the metric `monitor_of` names (the
validation average precision for the classifiers, the validation loss for the anomaly models, which learn
without labels). `after_fit` scores the validation period with the trained model (early stopping's best
epoch) and chooses the decision threshold there.
"""

import inspect

import numpy as np
import tensorflow as tf

from apps.fraud import data as fraud_data
from apps.fraud import features, metrics, models
from apps.fraud import plots as fraud_plots
from apps.fraud.validation import ValidationMetrics
from shared.app import DataSource, Endpoint, Report, Task
from shared.errors import DataError
from shared.optimizers import build_optimizer

UNSUPERVISED = ("autoencoder", "vae")


class DetectionTask(Task):
    app = "fraud"
    name = "detection"
    # Every model's, the anomaly models' too: they watch their reconstruction loss while training, but what they
    # are for, and what `evaluate` measures, is ranking the frauds.
    headline = ("test_average_precision", "max")

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        folder, _layout, _files = fraud_data.check(config, data_dir)
        return DataSource.files(folder)

    def build_data(self, config, source):
        return fraud_data.build(config, source)

    # === Model ===

    def build_model(self, config, data):
        for window, name, period in ((data.train_window, "training", "train"),
                                     (data.validation_window, "validation", "validation")):
            if window is None or not len(window):
                first, last = fraud_data.periods(config)[period]
                raise DataError(f"No transactions in the {name} period. Received: {first} ... {last} (train_start="
                                f"{config.train_start}, train_end={config.train_end}, delay_days={config.delay_days}, "
                                f"validation_days={config.validation_days}). Expected transactions on those days in "
                                "the data; fix the dates with --set train_start=YYYY-MM-DD --set train_end=YYYY-MM-DD.")
        model = models.build(config.model, data.train_window.inputs, hidden_units=config.hidden_units,
                             dropout_rate=config.dropout_rate, ensemble_size=config.ensemble_size,
                             latent_dim=config.latent_dim, sequence_length=config.sequence_length,
                             recurrent_units=config.recurrent_units, seed=config.seed,
                             training_labels=data.train_window.labels, feature_bins=config.feature_bins)
        model.compile(optimizer=build_optimizer(config, max(1, len(data.train_window) // config.batch_size)),
                      loss=models.loss(config.model, config.imbalance, config.focal_gamma))
        return model

    def monitor_of(self, config):
        return ("val_loss", "min") if config.model in UNSUPERVISED else ("val_average_precision", "max")

    def metric_callbacks(self, config, data):
        return [ValidationMetrics(data.validation_window, config.top_k)]

    def class_weight(self, config, data):
        """Inverse class frequencies (balanced), with `imbalance=class_weight` for the classifiers."""
        if config.imbalance != "class_weight" or config.model in UNSUPERVISED:
            return None
        rate = float(data.train_window.labels.mean())
        return {0: 0.5 / (1 - rate), 1: 0.5 / max(rate, 1e-6)}

    def after_fit(self, model, data, config):
        """The decision threshold: the score `config.threshold_rule` chooses on the trained model's scores of the
        validation period (out of time: after the training period and its delay)."""
        validation = data.validation_window
        scores = models.scores(model, validation.inputs)
        threshold = metrics.choose_threshold(validation.labels, scores, validation.days, config.threshold_rule,
                                             config.target_precision, config.alerts_per_day)
        result, _per_day = metrics.report(validation.labels, scores, validation.customers, validation.days,
                                          scores >= threshold, config.top_k, prefix="validation_")
        return {"threshold": threshold, "alert_rate": float(np.mean(scores >= threshold)),
                "threshold_period": [str(validation.first_day), str(validation.last_day)],
                "validation_metrics": result}

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        threshold = float(info["threshold"])
        specs = [tf.TensorSpec(tensor.shape, tensor.dtype, name=name) for name, tensor in
                 models.serving_inputs(config.sequence_length if config.model == "sequence" else 0).items()]

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
