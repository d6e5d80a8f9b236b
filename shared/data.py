"""tf.data helpers shared by every app: splits (random and time-ordered), shuffle, cache, batch, augment,
prefetch, and the number of steps an epoch takes."""

import hashlib

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def split_indices(num_examples, validation_fraction, seed):
    """Shuffle `range(num_examples)` with `seed` and split it into (train, validation) index arrays."""
    order = np.random.default_rng(seed).permutation(num_examples)
    num_validation = int(round(num_examples * validation_fraction))
    return np.sort(order[num_validation:]), np.sort(order[:num_validation])


def time_split(timestamps, validation_start, test_start, gap=None, end=None):
    """Time-ordered (train, validation, test) index arrays: train before validation before test.

    `timestamps`: one sortable value per example (numpy datetime64, pandas timestamps or numbers).
    Train is `t < validation_start - gap`, validation `validation_start <= t < test_start - gap`, test
    `test_start <= t < end` (no end: everything after). `gap` (same unit as the timestamps' differences,
    e.g. `np.timedelta64(7, "D")`) leaves a period out before validation and before test, for labels
    that arrive late (fraud is known a week later). Each array is sorted by time.
    """
    timestamps = np.asarray(timestamps)
    if not validation_start < test_start:
        raise ValueError(
            f"Invalid time split. Received: validation_start={validation_start}, test_start={test_start}. "
            "Expected validation_start < test_start."
        )
    order = np.argsort(timestamps, kind="stable")
    ordered = timestamps[order]
    train_end = validation_start if gap is None else validation_start - gap
    validation_end = test_start if gap is None else test_start - gap
    train = order[ordered < train_end]
    validation = order[(ordered >= validation_start) & (ordered < validation_end)]
    test_mask = ordered >= test_start
    if end is not None:
        test_mask &= ordered < end
    test = order[test_mask]
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        if not len(part):
            raise ValueError(
                f"Time split leaves the {name} period empty. Received: {len(timestamps)} examples from "
                f"{ordered[0] if len(ordered) else None} to {ordered[-1] if len(ordered) else None}, "
                f"validation_start={validation_start}, test_start={test_start}, gap={gap}. "
                "Expected dates inside the data's range."
            )
    return train, validation, test


def steps_per_epoch(dataset):
    """How many batches one pass over `dataset` yields, also when tf.data cannot tell (a filter).

    `dataset.cardinality()` is -2 (unknown) after `filter` and similar ops; the schedules built from
    steps per epoch would then decay over 1 step. Known cardinality is used as is; unknown is counted
    with one pass (cheap for cached or in-memory data); infinite data is refused.
    """
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "Cannot count steps per epoch of an infinite dataset. Received: a dataset with infinite cardinality "
            "(repeat() without a count). Expected a finite dataset: drop repeat() or take(N) first."
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        cardinality = int(dataset.reduce(np.int64(0), lambda count, _batch: count + 1))
    if cardinality < 1:
        raise ValueError("Cannot train on an empty dataset. Received: a dataset with 0 batches. "
                         "Expected at least one batch: check the data filters and max_train_examples.")
    return cardinality


def sized(dataset):
    """`dataset` with its number of batches known to tf.data (counted once when a filter hid it), so
    Keras shows progress and does not warn that the input "ran out of data" after the first epoch."""
    if int(dataset.cardinality()) >= 0:
        return dataset
    return dataset.apply(tf.data.experimental.assert_cardinality(steps_per_epoch(dataset)))


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
