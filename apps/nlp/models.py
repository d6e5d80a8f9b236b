"""The text classifiers: strings in, a tokenizer layer, an encoder, a pooled vector, a small head.

    text [batch] (tf.string) -> tokenizer -> token ids [batch, sequence_length] -> encoder -> pooled [batch, width]
        -> dense_block -> softmax

The tokenizer (keras-hub's `WordPieceTokenizer`, or BERT's preprocessor for `transfer`) is a layer of
the model, so the model trained, the one MLflow logs (its vocabulary travels as the layer's asset in the
`.keras` file) and the one exported are one object taking raw strings.

Encoders (`model`):
- `cnn`: parallel 1-D convolutions (one per kernel size, `shared.layers.conv_block`), max-pooled:
  n-gram detectors, the fastest to train.
- `rnn`: a bidirectional GRU or LSTM (`shared.layers.recurrent_block`) that skips padding (mask).
- `transformer`: keras-hub's `TokenAndPositionEmbedding` and `TransformerEncoder` layers, mean-pooled
  over real tokens.
- `transfer`: keras-hub's `BertBackbone` (all-MiniLM-L6-v2), mean-pooled or its `[CLS]` state.

Pooling over real tokens is `MaskedPooling`: an empty message (all padding) pools to zeros instead of
0/0 = NaN, so serving answers it.
"""

import keras
import keras_hub

from apps.nlp.vocabulary import PAD_ID
from shared.layers import conv_block, dense_block, recurrent_block


@keras.saving.register_keras_serializable(package="dlsuite_nlp")
class MaskedPooling(keras.layers.Layer):
    """Mean or max over the positions whose token id is not padding, or the first position (BERT's `[CLS]`):
    `(sequence, token_ids) -> [batch, width]`."""

    def __init__(self, mode="mean", pad_id=PAD_ID, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "max", "first"):
            raise ValueError(f"Unknown pooling. Received: mode={mode!r}. Expected 'mean', 'max' or 'first'.")
        self.mode, self.pad_id = mode, pad_id
        self.supports_masking = True  # takes the mask from the token ids; the pooled vector has none

    def compute_mask(self, sequence, mask=None):
        return None

    def call(self, sequence, token_ids, mask=None):
        if self.mode == "first":
            return sequence[:, 0, :]
        mask = keras.ops.cast(keras.ops.not_equal(token_ids, self.pad_id), sequence.dtype)[..., None]
        if self.mode == "max":
            return keras.ops.max(sequence * mask + (mask - 1.0) * 1e9, axis=1) * keras.ops.max(mask, axis=1)
        return keras.ops.sum(sequence * mask, axis=1) / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, sequence_shape, token_ids_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "pad_id": self.pad_id}


@keras.saving.register_keras_serializable(package="dlsuite_nlp")
class BertTextInputs(keras_hub.models.BertTextClassifierPreprocessor):
    """BERT's preprocessor (tokenizer, `[CLS] text [SEP]` packed and padded to `sequence_length`) as a layer of a
    functional model taking strings: `text [batch] -> {token_ids, padding_mask, segment_ids}`.

    keras-hub's preprocessor builds its packer from the tokenizer's special-token ids in `build` and has no
    `compute_output_spec`, so a saved model that contains it cannot be rebuilt: Keras calls it on symbolic
    inputs before the tokenizer's vocabulary (an asset) is loaded. Here the ids are part of the config, the
    packer is made in `__init__` and the output spec is declared, so the `.keras` file MLflow logs reloads.
    """

    def __init__(self, tokenizer, sequence_length=512, truncate="round_robin", special_token_ids=None, **kwargs):
        super().__init__(tokenizer, sequence_length=sequence_length, truncate=truncate, **kwargs)
        if special_token_ids is None:
            special_token_ids = (tokenizer.start_token_id, tokenizer.end_token_id, tokenizer.pad_token_id)
        self.special_token_ids = [int(token_id) for token_id in special_token_ids]
        start, end, pad = self.special_token_ids
        self.packer = keras_hub.layers.MultiSegmentPacker(start_value=start, end_value=end, pad_value=pad,
                                                          truncate=truncate, sequence_length=sequence_length)

    def build(self, input_shape):
        self.built = True  # the packer exists already; the tokenizer needs no build

    def compute_output_spec(self, x, y=None, sample_weight=None):
        shape = (x.shape[0], self.sequence_length)
        return {"token_ids": keras.KerasTensor(shape, "int32"), "padding_mask": keras.KerasTensor(shape, "bool"),
                "segment_ids": keras.KerasTensor(shape, "int32")}

    def get_config(self):
        return {**super().get_config(), "special_token_ids": self.special_token_ids}


# === Encoders: token ids -> pooled vector ===


def cnn_encoder(token_ids, *, vocabulary_size, embedding_dim, dropout_rate, filters, kernel_sizes):
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")(token_ids)
    x = keras.layers.SpatialDropout1D(dropout_rate, name="embedding_dropout")(x)
    branches = [keras.layers.GlobalMaxPooling1D(name=f"max_pool_{size}")(
        conv_block(x, filters, size, batch_norm=False, rank=1, name=f"conv_{size}"))
        for size in kernel_sizes]
    return branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="ngrams")(branches)


def rnn_encoder(token_ids, *, vocabulary_size, embedding_dim, dropout_rate, rnn_cell, rnn_units):
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
    x = keras.layers.SpatialDropout1D(dropout_rate, name="embedding_dropout")(x)
    x = recurrent_block(x, rnn_units, cell=rnn_cell, bidirectional=True, return_sequences=True, name="recurrent")
    return keras.layers.Concatenate(name="pooled")([MaskedPooling("mean", name="mean_pool")(x, token_ids),
                                                    MaskedPooling("max", name="max_pool")(x, token_ids)])


def transformer_encoder(token_ids, *, vocabulary_size, sequence_length, embedding_dim, dropout_rate, num_layers,
                        num_heads, intermediate_dim):
    x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size, sequence_length, embedding_dim,
                                                   mask_zero=True, name="embedding")(token_ids)
    x = keras.layers.Dropout(dropout_rate, name="embedding_dropout")(x)
    for number in range(num_layers):  # the embedding's mask (id 0 = padding) reaches every layer
        x = keras_hub.layers.TransformerEncoder(intermediate_dim, num_heads, dropout=dropout_rate,
                                                name=f"encoder_{number}")(x)
    return MaskedPooling("mean", name="mean_pool")(x, token_ids)


CHAR_VOCABULARY = 256  # codepoints 0-254 (ASCII and Latin-1) keep their id; every other character shares 255


def char_encoder(text, *, char_filters, char_sequence_length, char_kernel_sizes, dropout_rate):
    """Character n-grams (`char_kernel_sizes`), max-pooled: what word pieces spell badly (`PICSFREE1`,
    `sms.shsex.net`, `£1000`, phone numbers). keras-hub's `UnicodeCodepointTokenizer` pads with 0 and clamps
    codepoints to `CHAR_VOCABULARY`, so any string is read."""
    codepoints = keras_hub.tokenizers.UnicodeCodepointTokenizer(
        sequence_length=char_sequence_length, lowercase=False, vocabulary_size=CHAR_VOCABULARY,
        name="characters")(text)
    x = keras.layers.Embedding(CHAR_VOCABULARY, 32, name="char_embedding")(codepoints)
    x = keras.layers.SpatialDropout1D(dropout_rate, name="char_dropout")(x)
    branches = [keras.layers.GlobalMaxPooling1D(name=f"char_max_pool_{size}")(
        conv_block(x, char_filters, size, batch_norm=False, rank=1, name=f"char_conv_{size}"))
        for size in char_kernel_sizes]
    return branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="char_ngrams")(branches)


def classification_head(pooled, *, num_classes, dropout_rate, hidden_units):
    """Dropout, an optional hidden `dense_block` (`hidden_units` 0: none), and the softmax over classes."""
    x = keras.layers.Dropout(dropout_rate, name="head_dropout")(pooled)
    if hidden_units:
        x = dense_block(x, hidden_units, dropout_rate=dropout_rate, name="hidden")
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def text_input():
    """The model input: a batch of raw strings (what serving receives)."""
    return keras.Input((), dtype="string", name="text")


def build_classifier(tokenizer, *, num_classes, model="cnn", sequence_length=64, embedding_dim=64, dropout_rate=0.2,
                     filters=64, kernel_sizes=(3, 4, 5), rnn_cell="gru", rnn_units=64, num_layers=2, num_heads=2,
                     intermediate_dim=128, char_filters=0, char_sequence_length=256, char_kernel_sizes=(3, 5, 7),
                     hidden_units=64):
    """The from-scratch classifier: strings `[batch]` in, `tokenizer` (a keras-hub tokenizer layer padding to
    `sequence_length` with id 0) inside, the `model` encoder ("cnn", "rnn" or "transformer"), an optional
    character branch (`char_filters` > 0), class probabilities out."""
    text = text_input()
    token_ids = tokenizer(text)
    shared = {"vocabulary_size": tokenizer.vocabulary_size(), "embedding_dim": embedding_dim,
              "dropout_rate": dropout_rate}
    if model == "cnn":
        pooled = cnn_encoder(token_ids, filters=filters, kernel_sizes=kernel_sizes, **shared)
    elif model == "rnn":
        pooled = rnn_encoder(token_ids, rnn_cell=rnn_cell, rnn_units=rnn_units, **shared)
    elif model == "transformer":
        pooled = transformer_encoder(token_ids, sequence_length=sequence_length, num_layers=num_layers,
                                     num_heads=num_heads, intermediate_dim=intermediate_dim, **shared)
    else:
        raise ValueError(f"Unknown encoder. Received: model={model!r}. Expected 'cnn', 'rnn' or 'transformer'.")
    if char_filters:
        pooled = keras.layers.Concatenate(name="words_and_characters")([pooled, char_encoder(
            text, char_filters=char_filters, char_sequence_length=char_sequence_length,
            char_kernel_sizes=char_kernel_sizes, dropout_rate=dropout_rate)])
    probabilities = classification_head(pooled, num_classes=num_classes, dropout_rate=dropout_rate,
                                        hidden_units=hidden_units)
    return keras.Model(text, probabilities, name=f"{model}_classifier")


# === Transfer: a pretrained BERT-style encoder under the same head ===


def build_transfer_classifier(preprocessor, backbone, *, num_classes, fine_tune=False, pooling="mean",
                              dropout_rate=0.2, hidden_units=0):
    """Strings in, `preprocessor` (keras-hub's `BertTextClassifierPreprocessor`: token ids, padding mask and
    segment ids) and `backbone` (a `BertBackbone`) inside, the head on top; the backbone is frozen unless
    `fine_tune`. `pooling`: "mean" over real tokens or "cls" (the first token's state)."""
    backbone.trainable = fine_tune
    text = text_input()
    features = preprocessor(text)
    outputs = backbone(features)
    pooled = MaskedPooling("first" if pooling == "cls" else "mean", name=f"{pooling}_pool")(
        outputs["sequence_output"], features["token_ids"])
    probabilities = classification_head(pooled, num_classes=num_classes, dropout_rate=dropout_rate,
                                        hidden_units=hidden_units)
    return keras.Model(text, probabilities, name=f"transfer_{'fine_tune' if fine_tune else 'frozen'}")
