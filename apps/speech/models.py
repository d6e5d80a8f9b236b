"""Speech models on log-mel features `[frames, num_mel_bins]`, built from shared blocks.

Every model starts with a `Normalization` layer holding the per-mel-bin mean and
variance of the training features, so it ships inside the model (and the export).
"""

import keras

from shared import layers


def _normalized_image(input_shape, mean, variance):
    inputs = keras.Input(shape=input_shape, name="log_mel")
    x = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name="normalize")(inputs)
    x = keras.layers.Reshape((*input_shape, 1), name="add_channel")(x)
    return inputs, x


def _conv_stages(config, x, time_pool):
    """Conv blocks; each stage halves frequency, and time too while `time_pool` says so."""
    for stage, filters in enumerate(config.filters):
        x = layers.conv_block(x, filters, activation=config.activation, l2=config.l2, name=f"stage{stage}_conv")
        pool = (2 if time_pool(stage) else 1, 2)
        x = keras.layers.MaxPooling2D(pool, name=f"stage{stage}_pool")(x)
        if config.conv_dropout_rate:
            x = keras.layers.SpatialDropout2D(config.conv_dropout_rate, name=f"stage{stage}_dropout")(x)
    return x


def _to_sequence(x):
    """`[batch, time, frequency, channels]` -> `[batch, time, frequency * channels]`."""
    return keras.layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="to_sequence")(x)


def build_classifier(config, input_shape, mean, variance, num_classes=10):
    """`config.model`: "cnn" (conv stages + dense head) or "crnn" (conv stages + bidirectional GRU/LSTM)."""
    # === Layers ===
    inputs, x = _normalized_image(input_shape, mean, variance)
    x = _conv_stages(config, x, time_pool=lambda stage: True if config.model == "cnn" else stage == 0)
    if config.model == "cnn":
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = _to_sequence(x)
        x = layers.recurrent_block(x, config.rnn_units, cell=config.rnn_cell, return_sequences=False, name="rnn")
    x = layers.dense_block(x, config.dense_units, activation=config.activation, dropout_rate=config.dropout_rate,
                           l2=config.l2, batch_norm=True, name="head")
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name=f"speech_{config.model}")


def build_ctc_crnn(config, input_shape, mean, variance, num_labels=10):
    """Conv stages (time pooled by 2 in the first two) + stacked bidirectional RNNs -> per-step logits.

    Output `[batch, steps, num_labels + 1]`: index 0 is the CTC blank, index d + 1 is digit d.
    """
    # === Layers ===
    inputs, x = _normalized_image(input_shape, mean, variance)
    x = _conv_stages(config, x, time_pool=lambda stage: stage < 2)
    x = _to_sequence(x)
    x = keras.layers.Dense(config.rnn_units, name="project")(x)
    for index in range(config.rnn_layers):
        x = layers.recurrent_block(x, config.rnn_units, cell=config.rnn_cell, return_sequences=True,
                                   name=f"rnn{index}")
        if config.dropout_rate:
            x = keras.layers.Dropout(config.dropout_rate, name=f"rnn{index}_dropout")(x)
    outputs = keras.layers.Dense(num_labels + 1, name="logits")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name="speech_ctc_crnn")

