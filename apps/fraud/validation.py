"""The validation period's metrics each epoch: a Keras callback (`DetectionTask.metric_callbacks`).

At the end of each epoch it scores every transaction of the validation period with the model being trained
(the weight average when the config has `ema_momentum`: `shared.callbacks.AveragedWeights` runs before it) and
adds to the epoch's logs what the test reports: `val_average_precision`, `val_auc_roc` and
`val_card_precision_top_<k>` (`apps/fraud/metrics.py`). Early stopping, LR reduction, `dlsuite tune` and the
MLflow logger run after it and read them; the learning-curve figure plots them.
"""

import keras

from apps.fraud import metrics, models


class ValidationMetrics(keras.callbacks.Callback):
    def __init__(self, window, top_k=100):
        """`window`: the validation period (`apps.fraud.data.Window`: serving inputs, labels, cards, days)."""
        super().__init__()
        self.window, self.top_k = window, top_k

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.window is None or not len(self.window):
            return
        window = self.window
        scores = models.scores(self.model, window.inputs)
        card_precision, _per_day = metrics.card_precision_top_k(window.customers, window.days, window.labels, scores,
                                                                self.top_k)
        logs["val_average_precision"] = metrics.average_precision(window.labels, scores)
        logs["val_auc_roc"] = metrics.auc_roc(window.labels, scores)
        logs[f"val_card_precision_top_{self.top_k}"] = card_precision
