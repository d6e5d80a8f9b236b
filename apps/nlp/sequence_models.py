"""The generating tasks' models, built from keras-hub blocks: they take token ids and return logits.

- `build_character_model`: a decoder-only transformer (pre-norm `TransformerDecoder` blocks without cross
  attention, so each only attends to earlier characters) or stacked LSTMs, over character ids.
- `build_translation_model`: an encoder-decoder transformer. It is three Keras models: `encoder` (source
  ids -> encoded sequence), `decoder` (target ids, encoded sequence, source padding mask -> logits) and
  the training model that chains them; serving calls the encoder once and the decoder once per token.

The tokenizers stay outside (they are plain graph functions of the vocabulary, `apps.nlp.characters`,
or keras-hub WordPiece tokenizers rebuilt from the run's info), so the saved Keras model holds weights only.
"""

import keras
import keras_hub

PAD_ID = 0


def build_character_model(vocabulary_size, *, model="transformer", sequence_length=128, embedding_dim=192,
                          num_layers=4, num_heads=4, intermediate_dim=768, lstm_units=512, dropout_rate=0.1):
    """Character ids in, next-character logits out: `model` "transformer" (decoder blocks over `sequence_length`
    positions) or "lstm" (`num_layers` stacked LSTMs of `lstm_units`)."""
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    if model == "transformer":
        x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size, sequence_length, embedding_dim,
                                                       name="embedding")(token_ids)
        x = keras.layers.Dropout(dropout_rate)(x)
        for block in range(num_layers):
            x = keras_hub.layers.TransformerDecoder(intermediate_dim, num_heads, dropout=dropout_rate,
                                                    normalize_first=True, activation="gelu",
                                                    name=f"decoder_{block}")(x)
        x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    else:
        x = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")(token_ids)
        for block in range(num_layers):
            x = keras.layers.LSTM(lstm_units, return_sequences=True, name=f"lstm_{block}")(x)
            x = keras.layers.Dropout(dropout_rate)(x)
    logits = keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")(x)
    return keras.Model(token_ids, logits, name=f"character_{model}")


def build_translation_model(source_vocabulary_size, target_vocabulary_size, *, sequence_length, max_output_tokens,
                            embedding_dim=192, num_layers=2, num_heads=6, intermediate_dim=768, dropout_rate=0.1):
    """`(training_model, encoder, decoder)`; the training model takes `encoder_token_ids` and `decoder_token_ids`.

    The decoder embeds `target_positions(sequence_length, max_output_tokens)` positions."""
    source_ids = keras.Input((None,), dtype="int32", name="encoder_token_ids")
    x = keras_hub.layers.TokenAndPositionEmbedding(source_vocabulary_size, sequence_length,
                                                   embedding_dim, name="source_embedding")(source_ids)
    padding_mask = keras.ops.not_equal(source_ids, PAD_ID)  # explicit: Keras masks do not cross into serving's loop
    for block in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(intermediate_dim, num_heads, dropout=dropout_rate,
                                                normalize_first=True, name=f"encoder_{block}")(
            x, padding_mask=padding_mask)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")(x)
    encoder = keras.Model(source_ids, x, name="encoder")

    target_ids = keras.Input((None,), dtype="int32", name="decoder_token_ids")
    encoded = keras.Input((None, embedding_dim), name="encoded")
    source_mask = keras.Input((None,), dtype="bool", name="source_padding_mask")
    y = keras_hub.layers.TokenAndPositionEmbedding(target_vocabulary_size,
                                                   target_positions(sequence_length, max_output_tokens),
                                                   embedding_dim, name="target_embedding")(target_ids)
    for block in range(num_layers):
        y = keras_hub.layers.TransformerDecoder(intermediate_dim, num_heads, dropout=dropout_rate,
                                                normalize_first=True, name=f"decoder_{block}")(
            y, encoder_sequence=encoded, encoder_padding_mask=source_mask)
    y = keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")(y)
    logits = keras.layers.Dense(target_vocabulary_size, dtype="float32", name="logits")(y)
    decoder = keras.Model([target_ids, encoded, source_mask], logits, name="decoder")

    train_source = keras.Input((None,), dtype="int32", name="encoder_token_ids")
    train_target = keras.Input((None,), dtype="int32", name="decoder_token_ids")
    train_logits = decoder([train_target, encoder(train_source), keras.ops.not_equal(train_source, PAD_ID)])
    model = keras.Model({"encoder_token_ids": train_source, "decoder_token_ids": train_target}, train_logits,
                        name="translation_transformer")
    return model, encoder, decoder


def target_positions(sequence_length, max_output_tokens):
    """Positions the decoder embeds: the training targets' and the served outputs' (plus the start token)."""
    return max(sequence_length, max_output_tokens) + 1


@keras.saving.register_keras_serializable(package="dlsuite_nlp")
class MaskedCrossentropy(keras.losses.Loss):
    """Cross-entropy over the non-padding targets (id 0 is padding), with label smoothing."""

    def __init__(self, label_smoothing=0.0, name="masked_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "int32")
        targets = keras.ops.one_hot(y_true, keras.ops.shape(y_pred)[-1])
        losses = keras.losses.categorical_crossentropy(targets, y_pred, from_logits=True,
                                                       label_smoothing=self.label_smoothing)
        mask = keras.ops.cast(keras.ops.not_equal(y_true, PAD_ID), losses.dtype)
        return keras.ops.sum(losses * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def submodel(model, name):
    """The encoder or decoder inside a (possibly reloaded) training model."""
    return model.get_layer(name)
