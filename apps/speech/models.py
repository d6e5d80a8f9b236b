"""Speech models: end-to-end Keras models from raw 8 kHz waveforms, built from shared blocks.

Every model starts the same way:

    waveforms float32 [batch, samples] (any length, zero-padded)
      -> LogMelFrontEnd                  log-mel [batch, frames, mels]
      -> SpecAugment                     (training=True only)
      -> Normalization                   per-mel-bin mean and variance of the training features
      -> [batch, frames, mels, 1]

so the model logged to MLflow, the export and the benchmark all take waveforms and answer the same.
"""

import keras

from apps.speech.features import front_end, spec_augment
from shared import layers


def _log_mel_image(config, mean, variance):
    """Waveform input -> normalized log-mel "image" `[batch, frames, mels, 1]`."""
    inputs = keras.Input(shape=(None,), name="waveforms")
    extractor = front_end(config)
    x = extractor(inputs)
    x = spec_augment(config)(x)
    x = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name="normalize")(x)
    x = keras.layers.Reshape((extractor.num_frames, extractor.num_mel_bins, 1), name="add_channel")(x)
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


def build_classifier(config, mean, variance, num_classes=10):
    """`config.model`: "cnn" (conv stages + dense head) or "crnn" (conv stages + bidirectional GRU/LSTM)."""
    # === Layers ===
    inputs, x = _log_mel_image(config, mean, variance)
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


def build_ctc_crnn(config, mean, variance, num_labels=10):
    """Conv stages (time pooled by 2 in the first two) + stacked bidirectional RNNs -> per-step logits.

    Output `[batch, steps, num_labels + 1]`: index 0 is the CTC blank, index d + 1 is digit d.
    """
    # === Layers ===
    inputs, x = _log_mel_image(config, mean, variance)
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
