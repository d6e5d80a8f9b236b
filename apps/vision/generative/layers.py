"""The generative models' own Keras layer: the diffusion U-Net's noise-level embedding, saved with the model."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class NoiseEmbedding(keras.layers.Layer):
    """Noise rates `[batch]` -> `[batch, dim]`: sin and cos of the rate at `dim / 2` log-spaced frequencies."""

    def __init__(self, dim, max_frequency=1000.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.max_frequency = int(dim), float(max_frequency)

    def call(self, rates):
        frequencies = ops.exp(ops.linspace(0.0, math.log(self.max_frequency), self.dim // 2))
        angles = ops.cast(ops.expand_dims(rates, -1), "float32") * frequencies * 2.0 * math.pi
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.dim // 2 * 2)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_frequency": self.max_frequency}
