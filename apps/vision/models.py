"""The vision CNN, built from shared blocks."""

import keras

from shared import layers


def build_cnn(config, num_classes, image_shape=(28, 28, 1)):
    # === Layers ===
    inputs = keras.Input(shape=image_shape, name="pixels")  # float32 pixel values in [0, 255]
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
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
    return keras.Model(inputs, outputs, name="vision_cnn")
