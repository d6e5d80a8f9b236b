"""The language model's character tokenizer: graph functions of a vocabulary, no lookup-table resources.

The vocabulary is the sorted list of the training text's characters after `UNKNOWN` (id 0): a character
the training text never had (an emoji sent to the served model) reads as id 0 and is written back as
U+FFFD, never an error. A newline is always in the vocabulary: it starts every sequence the model scores
or continues (`START`), as Tiny Shakespeare's speeches start after one.

Encoding maps code points to ids with `tf.searchsorted` over the sorted code points (constants of the
graph), so the exported SavedModel needs nothing but core TensorFlow ops.
"""

import numpy as np
import tensorflow as tf

UNKNOWN = "\ufffd"
START = "\n"


def learn_vocabulary(text):
    """`[UNKNOWN, *sorted characters of text and START]`: a JSON-friendly list saved with the run."""
    return [UNKNOWN, *sorted((set(text) | {START}) - {UNKNOWN})]


class CharacterTokenizer:
    def __init__(self, vocabulary):
        if not vocabulary or vocabulary[0] != UNKNOWN:
            raise ValueError(f"Invalid character vocabulary. Received: {vocabulary[:5]!r}... Expected "
                             f"[{UNKNOWN!r}, characters...] as learn_vocabulary returns.")
        self.vocabulary = list(vocabulary)
        self.size = len(vocabulary)
        self.start_id = self.vocabulary.index(START)
        code_points = np.array([ord(character) for character in vocabulary], dtype=np.int32)
        self._known = code_points[1:]  # sorted
        self._code_points = code_points
        self._lookup = {character: index for index, character in enumerate(vocabulary)}

    def encode_numpy(self, text):
        """A Python string as an int32 array of ids (for building the training windows)."""
        return np.array([self._lookup.get(character, 0) for character in text], dtype=np.int32)

    def __call__(self, texts):
        """A `tf.string [batch]` as ragged int32 ids, each row starting with the START id."""
        code_points = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
        flat = code_points.flat_values
        known = tf.constant(self._known)
        position = tf.minimum(tf.searchsorted(known, flat, side="left", out_type=tf.int32), tf.size(known) - 1)
        ids = tf.where(tf.gather(known, position) == flat, position + 1, 0)
        ids = code_points.with_flat_values(ids)
        start = tf.fill([ids.nrows(), 1], tf.constant(self.start_id, tf.int32))
        return tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1)

    def detokenize(self, ids):
        """Ragged int32 ids as a `tf.string [batch]`."""
        return tf.strings.unicode_encode(tf.gather(tf.constant(self._code_points), ids), "UTF-8")
