"""tf.data helpers shared by every app: split, shuffle, cache, batch, augment, prefetch."""

import hashlib

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def split_indices(num_examples, validation_fraction, seed):
    """Shuffle `range(num_examples)` with `seed` and split it into (train, validation) index arrays."""
    order = np.random.default_rng(seed).permutation(num_examples)
    num_validation = int(round(num_examples * validation_fraction))
    return np.sort(order[num_validation:]), np.sort(order[:num_validation])


def pipeline(dataset, batch_size, *, shuffle=False, seed=0, cache=True, map_fn=None, batch_map_fn=None,
             drop_remainder=False):
    """The standard input pipeline.

    map_fn (per example, e.g. decoding) -> cache -> shuffle -> batch ->
    batch_map_fn (vectorized, e.g. augmentation) -> prefetch. Every map runs
    with AUTOTUNE parallelism.
    """
    if map_fn is not None:
        dataset = dataset.map(map_fn, num_parallel_calls=AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        cardinality = int(dataset.cardinality())
        buffer_size = cardinality if cardinality > 0 else 10_000
        dataset = dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if batch_map_fn is not None:
        dataset = dataset.map(batch_map_fn, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def one_hot(num_classes):
    """A map function `(x, y) -> (x, one_hot(y))`."""

    def apply(features, labels):
        return features, tf.one_hot(tf.cast(labels, tf.int32), num_classes)

    return apply


def augment_with(layers):
    """A batch map function that applies Keras preprocessing `layers` to the features only."""
    import keras

    augmenter = keras.Sequential(layers, name="augmentation")

    def apply(features, labels):
        return augmenter(features, training=True), labels

    return apply


def fingerprint_arrays(*arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
