"""What the two generating tasks share: in-graph decoding with keras-hub samplers.

Decoding runs inside the exported graph (a `tf.while_loop` in the sampler), so a client sends text and
gets text. keras-hub's samplers draw with a `SeedGenerator` (state that changes with every call), which
would make a served sample depend on what was served before; `SeededSampler` instead draws each token
with `tf.random.stateless_categorical` from the client's seed and the token's position, so the same
request gives the same text in any process. Translation uses the deterministic greedy and beam samplers
as they are.
"""


import keras_hub
import tensorflow as tf



class SeededSampler(keras_hub.samplers.Sampler):
    """Temperature and top-k sampling whose randomness is a function of `(seed, position)` only.

    `temperature`, `top_k` (0: the whole vocabulary) and `seed` may be tensors (serving inputs).
    """

    def __init__(self, seed, temperature=1.0, top_k=0):
        super().__init__(temperature=tf.maximum(tf.cast(temperature, tf.float32), 1e-4))
        self.seed, self.top_k = tf.cast(seed, tf.int32), tf.cast(top_k, tf.int32)
        self._index = None

    def __call__(self, next, prompt, **kwargs):
        def next_at(prompt, cache, index):
            self._index = index  # get_next_token runs next in the same loop body: it reads this position
            return next(prompt, cache, index)

        return super().__call__(next_at, prompt, **kwargs)

    def get_next_token(self, probabilities):
        vocabulary_size = tf.shape(probabilities)[-1]
        k = tf.where(self.top_k > 0, tf.minimum(self.top_k, vocabulary_size), vocabulary_size)
        top_probabilities, top_ids = tf.math.top_k(probabilities, k=k, sorted=False)
        seed = tf.stack([self.seed, tf.cast(self._index, tf.int32)])
        choice = tf.random.stateless_categorical(tf.math.log(top_probabilities + 1e-12), 1, seed=seed,
                                                 dtype=tf.int32)
        return tf.gather(top_ids, choice[:, 0], batch_dims=1)


def deterministic_sampler(decoding, num_beams):
    """keras-hub's greedy sampler, or its beam sampler keeping the best beam."""
    if decoding == "beam":
        return keras_hub.samplers.BeamSampler(num_beams=num_beams, return_all_beams=False)
    return keras_hub.samplers.GreedySampler()


def generated_part(buffer, start, length):
    """Row r's tokens `start[r] .. start[r] + length[r] - 1` of `buffer` (what the sampler wrote), ragged."""
    positions = tf.range(tf.shape(buffer)[1])[tf.newaxis, :]
    start = tf.cast(start, tf.int32)[:, tf.newaxis]
    keep = (positions >= start) & (positions < start + tf.cast(length, tf.int32)[:, tf.newaxis])
    return tf.ragged.boolean_mask(buffer, keep)
