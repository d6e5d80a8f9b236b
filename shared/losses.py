"""Losses Keras does not ship. Everything else comes from `keras.losses` by name."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dlsuite")
class TripletLoss(keras.losses.Loss):
    """Triplet margin loss on embeddings stacked as `y_pred = [anchor, positive, negative]`.

    `y_pred` has shape `(batch, 3, dim)`; `y_true` is ignored. The loss is
    `max(0, d(a, p) - d(a, n) + margin)` with squared Euclidean distance.
    """

    def __init__(self, margin=0.2, name="triplet", **kwargs):
        super().__init__(name=name, **kwargs)
        if margin <= 0:
            raise ValueError(f"Invalid value for argument margin. Received: margin={margin}. Expected > 0.")
        self.margin = margin

    def call(self, y_true, y_pred):
        anchor, positive, negative = y_pred[:, 0], y_pred[:, 1], y_pred[:, 2]
        positive_distance = ops.sum(ops.square(anchor - positive), axis=-1)
        negative_distance = ops.sum(ops.square(anchor - negative), axis=-1)
        return ops.maximum(positive_distance - negative_distance + self.margin, 0.0)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


def gaussian_kl(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)) in nats, summed over the last axis (a VAE's KL term, closed form).

    `0.5 * sum(exp(log_variance) + mean**2 - 1 - log_variance)`: one value per example.
    """
    return 0.5 * ops.sum(ops.exp(log_variance) + ops.square(mean) - 1.0 - log_variance, axis=-1)
