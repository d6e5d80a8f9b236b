"""The classifier: one end-to-end Keras model from raw uint8 images to class probabilities.

    images uint8 [batch, 28, 28]
      -> rescale to [0, 1], add the channel axis            (always)
      -> random flips / translations / erasing               (training=True only)
      -> MirrorAverage(backbone CNN)                         (mean with the mirror image at inference)
      -> probabilities [batch, num_classes]

The same object is trained by `model.fit` on batches of uint8 images, logged to MLflow, exported
and benchmarked, so all of them answer the same. The builders take explicit arguments; the task passes the
config's fields (`tasks/classification.py`).
"""

import keras

from apps.vision.classification.layers import MirrorAverage
from shared import layers

IMAGE_SHAPE = (28, 28)


def build_backbone(num_classes, filters=(32, 64, 128), stage_convs=(1, 1, 1), pool_last_stage=False,
                   dense_units=256, activation="relu", dropout_rate=0.3, conv_dropout_rate=0.1, l2=1e-4,
                   batch_norm_momentum=0.99, image_shape=(*IMAGE_SHAPE, 1)):
    """The CNN on pixels in [0, 1]: stages of `stage_convs[i]` convolutions of `filters[i]` with batch norm (and
    a 2x2 max pool after each stage but the last unless `pool_last_stage`), a dense head, a softmax."""
    # === Layers ===
    inputs = keras.Input(shape=image_shape, name="pixels")
    x = inputs
    for stage, (stage_filters, convs) in enumerate(zip(filters, stage_convs)):
        for index in range(convs):
            x = layers.conv_block(x, stage_filters, activation=activation, l2=l2,
                                  batch_norm_momentum=batch_norm_momentum, name=f"stage{stage}_conv{index}")
        if stage < len(filters) - 1 or pool_last_stage:
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        if conv_dropout_rate:
            x = keras.layers.SpatialDropout2D(conv_dropout_rate, name=f"stage{stage}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = layers.dense_block(x, dense_units, activation=activation, dropout_rate=dropout_rate, l2=l2, batch_norm=True,
                           batch_norm_momentum=batch_norm_momentum, name="head")
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name="backbone")


def augmentation_layers(random_flip=False, random_translation=0.0, random_erasing=False, seed=None):
    """Training-only augmentation on pixels in [0, 1] (Keras random layers pass inputs through at inference)."""
    augmentation = []
    if random_flip:
        augmentation.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip"))
    if random_translation:
        augmentation.append(keras.layers.RandomTranslation(
            random_translation, random_translation, fill_mode="constant", seed=seed, name="random_translation"))
    if random_erasing:
        augmentation.append(keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), value_range=(0, 1),
                                                       seed=seed, name="random_erasing"))
    return augmentation


def build_model(backbone, augmentation=(), mirror_average=False):
    """Raw uint8 images `[batch, 28, 28]` in, probabilities out: rescaling, the `augmentation` layers and the
    `backbone` (`build_backbone`), averaged with the mirror image at inference when `mirror_average`."""
    # === Layers ===
    images = keras.Input(shape=IMAGE_SHAPE, dtype="uint8", name="images")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(images)  # casts the uint8 pixels to float32
    x = keras.layers.Reshape((*IMAGE_SHAPE, 1), name="add_channel")(x)
    for layer in augmentation:
        x = layer(x)
    outputs = MirrorAverage(backbone, dtype="float32", name="mirror_average")(x) if mirror_average else backbone(x)
    # === Functional Model ===
    return keras.Model(images, outputs, name="vision_cnn")
