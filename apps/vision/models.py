"""The vision model: one end-to-end Keras model from raw uint8 images to class probabilities.

    images uint8 [batch, 28, 28]
      -> rescale to [0, 1], add the channel axis            (always)
      -> random flips / translations / erasing               (training=True only)
      -> MirrorAverage(backbone CNN)                         (mean with the mirror image at inference)
      -> probabilities [batch, num_classes]

The same object is trained by `model.fit` on batches of uint8 images, logged to MLflow, exported
and benchmarked, so all of them answer the same.
"""

import keras

from apps.vision.layers import MirrorAverage
from shared import layers

IMAGE_SHAPE = (28, 28)


def build_backbone(config, num_classes, image_shape=(*IMAGE_SHAPE, 1)):
    """The CNN on pixels in [0, 1]: conv stages with batch norm, a dense head, a softmax."""
    # === Layers ===
    inputs = keras.Input(shape=image_shape, name="pixels")
    x = inputs
    for stage, (filters, convs) in enumerate(zip(config.filters, config.stage_convs)):
        for index in range(convs):
            x = layers.conv_block(x, filters, activation=config.activation, l2=config.l2,
                                  name=f"stage{stage}_conv{index}")
        if stage < len(config.filters) - 1 or config.pool_last_stage:
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        if config.conv_dropout_rate:
            x = keras.layers.SpatialDropout2D(config.conv_dropout_rate, name=f"stage{stage}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = layers.dense_block(x, config.dense_units, activation=config.activation, dropout_rate=config.dropout_rate,
                           l2=config.l2, batch_norm=True, name="head")
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name="backbone")


def augmentation_layers(config):
    """Training-only augmentation on pixels in [0, 1] (Keras random layers pass inputs through at inference)."""
    augmentation = []
    if config.flips:
        augmentation.append(keras.layers.RandomFlip("horizontal", seed=config.seed, name="random_flip"))
    if config.random_translation:
        augmentation.append(keras.layers.RandomTranslation(
            config.random_translation, config.random_translation, fill_mode="constant", seed=config.seed,
            name="random_translation"))
    if config.random_erasing:
        augmentation.append(keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), value_range=(0, 1),
                                                       seed=config.seed, name="random_erasing"))
    return augmentation


def build_model(config, num_classes):
    """Raw uint8 images `[batch, 28, 28]` in, probabilities out; preprocessing and augmentation inside."""
    # === Layers ===
    images = keras.Input(shape=IMAGE_SHAPE, dtype="uint8", name="images")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(images)  # casts the uint8 pixels to float32
    x = keras.layers.Reshape((*IMAGE_SHAPE, 1), name="add_channel")(x)
    for layer in augmentation_layers(config):
        x = layer(x)
    backbone = build_backbone(config, num_classes)
    outputs = MirrorAverage(backbone, name="mirror_average")(x) if config.averages_mirror else backbone(x)
    # === Functional Model ===
    return keras.Model(images, outputs, name="vision_cnn")
