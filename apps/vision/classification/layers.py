"""Vision's own Keras layer: test-time mirror averaging, saved with the model."""

import keras


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class MirrorAverage(keras.layers.Wrapper):
    """Wraps an image classifier: at inference, the mean of its outputs for each image and its
    left-right mirror; in training (`training=True`), its output for the image alone.

    For a classifier trained on horizontally flipped images (Fashion-MNIST's clothes look the same
    mirrored), the mean over both views is a cheap test-time augmentation: no training time, one
    more forward pass per image. Images are `[batch, height, width, channels]`.
    """

    def call(self, images, training=None):
        outputs = self.layer(images, training=training)
        if training:
            return outputs
        return (outputs + self.layer(keras.ops.flip(images, axis=2), training=training)) / 2

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)
