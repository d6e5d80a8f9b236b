"""The text classifiers: strings in, a tokenizer layer, an encoder, a pooled vector, a small head.

    text [batch] (tf.string) -> tokenizer -> token ids [batch, sequence_length] -> encoder -> pooled [batch, width]
        -> dense_block -> softmax

The tokenizer (keras-hub's `WordPieceTokenizer`, or BERT's preprocessor for `transfer`) is a layer of
the model, so the model trained, the one MLflow logs (its vocabulary travels as the layer's asset in the
`.keras` file) and the one exported are one object taking raw strings.

Encoders (`config.model`):
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


CUSTOM_OBJECTS = {"MaskedPooling": MaskedPooling, "BertTextInputs": BertTextInputs}


def custom_objects():
    """What reloading a logged classifier needs: ours, and keras-hub's (registered when it is imported, as
    tensorflow-text's tokenizer ops are)."""
    return {**CUSTOM_OBJECTS, "WordPieceTokenizer": keras_hub.tokenizers.WordPieceTokenizer,
            "BertTokenizer": keras_hub.models.BertTokenizer, "BertBackbone": keras_hub.models.BertBackbone}


# === Encoders: (token ids, config, vocabulary size) -> pooled vector ===


def cnn_encoder(token_ids, config, vocabulary_size):
    x = keras.layers.Embedding(vocabulary_size, config.embedding_dim, name="embedding")(token_ids)
    x = keras.layers.SpatialDropout1D(config.dropout_rate, name="embedding_dropout")(x)
    branches = [keras.layers.GlobalMaxPooling1D(name=f"max_pool_{size}")(
        conv_block(x, config.filters, size, batch_norm=False, rank=1, name=f"conv_{size}"))
        for size in config.kernel_sizes]
    return branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="ngrams")(branches)


def rnn_encoder(token_ids, config, vocabulary_size):
    x = keras.layers.Embedding(vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding")(token_ids)
    x = keras.layers.SpatialDropout1D(config.dropout_rate, name="embedding_dropout")(x)
    x = recurrent_block(x, config.rnn_units, cell=config.rnn_cell, bidirectional=True, return_sequences=True,
                        name="recurrent")
    return keras.layers.Concatenate(name="pooled")([MaskedPooling("mean", name="mean_pool")(x, token_ids),
                                                    MaskedPooling("max", name="max_pool")(x, token_ids)])


def transformer_encoder(token_ids, config, vocabulary_size):
    x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size, config.sequence_length, config.embedding_dim,
                                                   mask_zero=True, name="embedding")(token_ids)
    x = keras.layers.Dropout(config.dropout_rate, name="embedding_dropout")(x)
    for number in range(config.num_layers):  # the embedding's mask (id 0 = padding) reaches every layer
        x = keras_hub.layers.TransformerEncoder(config.intermediate_dim, config.num_heads, dropout=config.dropout_rate,
                                                name=f"encoder_{number}")(x)
    return MaskedPooling("mean", name="mean_pool")(x, token_ids)


ENCODERS = {"cnn": cnn_encoder, "rnn": rnn_encoder, "transformer": transformer_encoder}

CHAR_VOCABULARY = 256  # codepoints 0-254 (ASCII and Latin-1) keep their id; every other character shares 255


def char_encoder(text, config):
    """Character n-grams (`config.char_kernel_sizes`), max-pooled: what word pieces spell badly (`PICSFREE1`,
    `sms.shsex.net`, `£1000`, phone numbers). keras-hub's `UnicodeCodepointTokenizer` pads with 0 and clamps
    codepoints to `CHAR_VOCABULARY`, so any string is read."""
    codepoints = keras_hub.tokenizers.UnicodeCodepointTokenizer(
        sequence_length=config.char_sequence_length, lowercase=False, vocabulary_size=CHAR_VOCABULARY,
        name="characters")(text)
    x = keras.layers.Embedding(CHAR_VOCABULARY, 32, name="char_embedding")(codepoints)
    x = keras.layers.SpatialDropout1D(config.dropout_rate, name="char_dropout")(x)
    branches = [keras.layers.GlobalMaxPooling1D(name=f"char_max_pool_{size}")(
        conv_block(x, config.char_filters, size, batch_norm=False, rank=1, name=f"char_conv_{size}"))
        for size in config.char_kernel_sizes]
    return branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="char_ngrams")(branches)


def classification_head(pooled, config, num_classes):
    """Dropout, an optional hidden `dense_block`, and the softmax over classes."""
    x = keras.layers.Dropout(config.dropout_rate, name="head_dropout")(pooled)
    if config.hidden_units:
        x = dense_block(x, config.hidden_units, dropout_rate=config.dropout_rate, name="hidden")
    return keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)


def text_input():
    """The model input: a batch of raw strings (what serving receives)."""
    return keras.Input((), dtype="string", name="text")


def build_classifier(config, tokenizer, num_classes):
    """The from-scratch classifier of `config.model`: strings `[batch]` in, `tokenizer` (a keras-hub tokenizer
    layer padding to `config.sequence_length` with id 0) inside, class probabilities out."""
    text = text_input()
    token_ids = tokenizer(text)
    pooled = ENCODERS[config.model](token_ids, config, tokenizer.vocabulary_size())
    if config.char_filters:
        pooled = keras.layers.Concatenate(name="words_and_characters")([pooled, char_encoder(text, config)])
    return keras.Model(text, classification_head(pooled, config, num_classes), name=f"{config.model}_classifier")


# === Transfer: a pretrained BERT-style encoder under the same head ===


def build_transfer_classifier(config, preprocessor, backbone, num_classes):
    """Strings in, `preprocessor` (keras-hub's `BertTextClassifierPreprocessor`: token ids, padding mask and
    segment ids) and `backbone` (a `BertBackbone`) inside, the head on top; the backbone is frozen unless
    `config.mode == "fine_tune"`."""
    backbone.trainable = config.mode == "fine_tune"
    text = text_input()
    features = preprocessor(text)
    outputs = backbone(features)
    pooled = MaskedPooling("first" if config.pooling == "cls" else "mean", name=f"{config.pooling}_pool")(
        outputs["sequence_output"], features["token_ids"])
    return keras.Model(text, classification_head(pooled, config, num_classes), name=f"transfer_{config.mode}")
