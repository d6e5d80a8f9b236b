"""Speech models: end-to-end Keras models from raw 8 kHz waveforms, built from shared blocks.

Every model starts the same way:

    waveforms float32 [batch, samples] (any length, zero-padded)
      -> WaveAugment                     (when configured; training=True only): speed, reverberation
      -> LogMelFrontEnd                  log-mel [batch, frames, mels]
      -> SpecAugment                     (training=True only)
      -> FrequencyWarp                   (when configured; training=True only)
      -> UtteranceNormalization          (when configured): per-clip CMVN
      -> Normalization                   per-mel-bin mean and variance of the training features
      -> [batch, frames, mels, 1]

so the model logged to MLflow, the export and the benchmark all take waveforms and answer the same. The
`embedding` classifier starts from the waveforms too, with the pretrained speech embedding's own front end
(`apps/speech/embedding.py`) instead:

    waveforms float32 [batch, samples] at 8 kHz
      -> WaveAugment                     (when configured; training=True only)
      -> EmbeddingFrontEnd               trimmed, centered, resampled to 16 kHz, log-mel [batch, frames, 32]
      -> EmbeddingWindows                [batch, windows, 76, 32, 1]
      -> the frozen speech embedding     [batch, windows, 96], each window
      -> mean and max over the windows   [batch, 192] ("pool": computed once per clip in training)
      -> Normalization                   the pooled embeddings' training mean and variance
      -> dense head, or softmax regression (dense_units=0)
"""

import keras

from shared import layers


def _log_mel_image(front_end, augmentation, mean, variance, waveform_augmentation=None, frequency_warp=None,
                   utterance_normalization=None):
    """Waveform input -> normalized log-mel "image" `[batch, frames, mels, 1]`: `front_end` (a `LogMelFrontEnd`),
    then `augmentation` (a `SpecAugment`, active in training only), then per-bin normalization. The optional layers
    of `apps/speech/augment.py` (None: left out) go before the front end, after `augmentation`, and before the
    per-bin normalization (`mean`, `variance` are statistics of what it outputs)."""
    inputs = keras.Input(shape=(None,), name="waveforms")
    x = waveform_augmentation(inputs) if waveform_augmentation is not None else inputs
    x = front_end(x)
    x = augmentation(x)
    for layer in (frequency_warp, utterance_normalization):
        x = layer(x) if layer is not None else x
    x = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name="normalize")(x)
    x = keras.layers.Reshape((front_end.num_frames, front_end.num_mel_bins, 1), name="add_channel")(x)
    return inputs, x


def _conv_stages(x, filters, activation, l2, conv_dropout_rate, time_pool):
    """Conv blocks; each stage halves frequency, and time too while `time_pool` says so."""
    for stage, width in enumerate(filters):
        x = layers.conv_block(x, width, activation=activation, l2=l2, name=f"stage{stage}_conv")
        pool = (2 if time_pool(stage) else 1, 2)
        x = keras.layers.MaxPooling2D(pool, name=f"stage{stage}_pool")(x)
        if conv_dropout_rate:
            x = keras.layers.SpatialDropout2D(conv_dropout_rate, name=f"stage{stage}_dropout")(x)
    return x


def _to_sequence(x):
    """`[batch, time, frequency, channels]` -> `[batch, time, frequency * channels]`."""
    return keras.layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="to_sequence")(x)


def build_classifier(front_end, augmentation, mean, variance, *, num_classes=10, model="cnn", filters=(16, 32, 64),
                     rnn_cell="gru", rnn_units=64, dense_units=128, activation="relu", dropout_rate=0.3,
                     conv_dropout_rate=0.1, l2=1e-4, **augmentation_layers):
    """`model`: "cnn" (conv stages + dense head) or "crnn" (conv stages + a bidirectional GRU/LSTM).
    `augmentation_layers`: `augment.layers_of(config)`."""
    # === Layers ===
    inputs, x = _log_mel_image(front_end, augmentation, mean, variance, **augmentation_layers)
    x = _conv_stages(x, filters, activation, l2, conv_dropout_rate,
                     time_pool=lambda stage: True if model == "cnn" else stage == 0)
    if model == "cnn":
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = _to_sequence(x)
        x = layers.recurrent_block(x, rnn_units, cell=rnn_cell, return_sequences=False, name="rnn")
    x = layers.dense_block(x, dense_units, activation=activation, dropout_rate=dropout_rate, l2=l2,
                           batch_norm=True, name="head")
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name=f"speech_{model}")


def build_ctc_crnn(front_end, augmentation, mean, variance, *, num_labels=10, filters=(16, 32, 64), rnn_cell="gru",
                   rnn_units=64, rnn_layers=2, activation="relu", dropout_rate=0.3, conv_dropout_rate=0.1, l2=1e-4,
                   **augmentation_layers):
    """Conv stages (time pooled by 2 in the first two) + stacked bidirectional RNNs -> per-step logits.

    Output `[batch, steps, num_labels + 1]`: index 0 is the CTC blank, index d + 1 is digit d.
    """
    # === Layers ===
    inputs, x = _log_mel_image(front_end, augmentation, mean, variance, **augmentation_layers)
    x = _conv_stages(x, filters, activation, l2, conv_dropout_rate, time_pool=lambda stage: stage < 2)
    x = _to_sequence(x)
    x = keras.layers.Dense(rnn_units, name="project")(x)
    for index in range(rnn_layers):
        x = layers.recurrent_block(x, rnn_units, cell=rnn_cell, return_sequences=True, name=f"rnn{index}")
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name=f"rnn{index}_dropout")(x)
    outputs = keras.layers.Dense(num_labels + 1, dtype="float32", name="logits")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name="speech_ctc_crnn")


def pooled_embeddings(inputs, front_end, embedding):
    """The graph from waveforms to the head's input: `front_end` (an `EmbeddingFrontEnd`), the windows, `embedding`
    (the network of `embedding.embedding_network`, frozen here) on each window, and the windows' mean and maximum,
    `[batch, 192]`, as the layer "pool"."""
    from apps.speech.embedding import EmbeddingWindows

    x = front_end(inputs)
    x = EmbeddingWindows(name="embedding_windows")(x)
    embedding.trainable = False
    x = keras.layers.TimeDistributed(embedding, name="embeddings")(x, training=False)
    return keras.layers.Concatenate(name="pool")([keras.layers.GlobalAveragePooling1D(name="mean")(x),
                                                  keras.layers.GlobalMaxPooling1D(name="max")(x)])


def embedding_pool(front_end, embedding):
    """`keras.Model`: waveforms -> the pooled embeddings (what the head of `build_embedding_classifier` reads)."""
    inputs = keras.Input(shape=(None,), name="waveforms")
    return keras.Model(inputs, pooled_embeddings(inputs, front_end, embedding), name="speech_embedding_pool")


def build_embedding_classifier(front_end, embedding, mean, variance, *, num_classes=10, dense_units=128,
                               activation="relu", dropout_rate=0.3, l2=1e-4, waveform_augmentation=None):
    """A head over the pretrained speech embedding: the pooled embeddings (`pooled_embeddings`), standardized by
    their training-set `mean` and `variance` (192 values each, from `embedding_pool`; None: adapted in training by
    `shared.frozen.adapt_readers`), then a dense block and
    softmax, or (`dense_units=0`) softmax regression with L2 on them: a linear probe. Only the head trains, so
    the task trains it on the pooled embeddings computed once (`Task.frozen_features`: "pool")."""
    # === Layers ===
    inputs = keras.Input(shape=(None,), name="waveforms")
    x = waveform_augmentation(inputs) if waveform_augmentation is not None else inputs
    x = pooled_embeddings(x, front_end, embedding)
    x = keras.layers.Normalization(mean=mean, variance=variance, dtype="float32", name="head_normalization")(x)
    if dense_units:
        x = layers.dense_block(x, dense_units, activation=activation, dropout_rate=dropout_rate, l2=l2,
                               batch_norm=True, name="head")
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities",
                                 kernel_regularizer=None if dense_units else layers.regularizer(0.0, l2))(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name="speech_embedding_classifier")
