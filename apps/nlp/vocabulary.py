"""WordPiece vocabularies and tokenizers: one implementation for tf.data and for the exported graph.

A vocabulary is learned from the TRAINING split only (a validation or test word must not shape the
vocabulary, or the scores flatter the model), with keras-hub's `compute_word_piece_vocabulary`. Its
data must be a `tf.data.Dataset` of strings: a Python list of strings is read as file names.

The vocabulary is a plain list of strings, so it travels in a run's `info` (JSON) and the export
rebuilds the very tokenizer training used from it: `build_tokenizer(info["vocabulary"], ...)`.

    vocabulary = learn_vocabulary(train_texts, vocabulary_size=8000, lowercase=True)
    tokenizer = build_tokenizer(vocabulary, sequence_length=64, lowercase=True)
    token_ids = tokenizer(tf.constant(["free entry!"]))    # int32 [batch, 64], padded with PAD_ID

Reserved tokens come first, so `[PAD]` is id 0 (what the tokenizer pads with and what
`mask_zero` embeddings mask) and `[UNK]` id 1 (every word the vocabulary cannot spell).
Other tasks pass their own reserved tokens (`[START]`, `[END]` for a decoder) after these two.
"""

import numpy as np
import tensorflow as tf

PAD = "[PAD]"
UNK = "[UNK]"
RESERVED_TOKENS = (PAD, UNK)
PAD_ID = 0


def as_text_dataset(texts, batch_size=1024):
    """`texts` (a `tf.data.Dataset` of strings, or any sequence of strings) as a batched Dataset of strings."""
    if isinstance(texts, tf.data.Dataset):
        return texts
    texts = np.asarray(list(texts), dtype=object).astype(str)
    if not len(texts):
        raise ValueError("Cannot learn a vocabulary from no text. Received: 0 strings. Expected at least one.")
    return tf.data.Dataset.from_tensor_slices(texts).batch(batch_size)


def learn_vocabulary(texts, vocabulary_size, lowercase=True, reserved_tokens=RESERVED_TOKENS, strip_accents=False):
    """Learn a WordPiece vocabulary of at most `vocabulary_size` tokens (reserved tokens included) from `texts`.

    `texts`: a `tf.data.Dataset` of strings (batched or not) or a sequence of strings (train split only).
    Returns a list of strings starting with `reserved_tokens` in order. The vocabulary may be smaller
    than asked when the text has fewer distinct word pieces.
    """
    import keras_hub

    reserved_tokens = list(reserved_tokens)
    if reserved_tokens[:2] != list(RESERVED_TOKENS):
        raise ValueError(
            f"Invalid reserved tokens. Received: reserved_tokens={reserved_tokens}. Expected them to start with "
            f"{list(RESERVED_TOKENS)}, so padding is id 0 and unknown pieces id 1."
        )
    if vocabulary_size <= len(reserved_tokens):
        raise ValueError(
            f"Invalid vocabulary size. Received: vocabulary_size={vocabulary_size} with {len(reserved_tokens)} "
            "reserved tokens. Expected more than the reserved tokens."
        )
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        as_text_dataset(texts), vocabulary_size, lowercase=lowercase, strip_accents=strip_accents,
        reserved_tokens=reserved_tokens,
    )
    return [token.decode("utf-8") if isinstance(token, bytes) else str(token) for token in vocabulary]


def build_tokenizer(vocabulary, sequence_length=None, lowercase=True, strip_accents=False, special_tokens=None):
    """A keras-hub `WordPieceTokenizer` over `vocabulary` (a list of strings, as `learn_vocabulary` returns).

    With `sequence_length` it returns dense int32 ids `[batch, sequence_length]`, truncated or padded with
    `PAD_ID`; without, ragged ids. It runs in tf.data maps and inside `tf.function` signatures alike
    (tensorflow-text ops: `shared.export.load_saved_model` registers them when reloading).
    `lowercase` and `strip_accents` must match what the vocabulary was learned with.
    `special_tokens` (e.g. `["[START]", "[END]"]`) are tokens of the vocabulary that `detokenize` may drop.
    """
    import keras_hub

    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=list(vocabulary), sequence_length=sequence_length, lowercase=lowercase,
        strip_accents=strip_accents, oov_token=UNK, special_tokens=special_tokens,
    )


def coverage(tokenizer, texts):
    """The fraction of word pieces of `texts` (a sequence of strings) the vocabulary knows (not `[UNK]`).

    A health check for a vocabulary learned on the train split and applied to validation or test.
    """
    unknown_id = tokenizer.token_to_id(UNK)
    ids = tokenizer(tf.constant(np.asarray(list(texts), dtype=object).astype(str)))
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.flat_values
    ids = tf.reshape(ids, [-1])
    ids = tf.boolean_mask(ids, tf.not_equal(ids, PAD_ID))
    total = int(tf.size(ids))
    return 1.0 if total == 0 else 1.0 - float(tf.reduce_sum(tf.cast(tf.equal(ids, unknown_id), tf.float32))) / total
