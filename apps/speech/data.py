"""From decoded clips to tf.data pipelines of raw waveforms, and the statistics the model normalizes with.

The pipelines yield zero-padded batches of waveforms `float32 [batch, longest]` and their targets:
the front end and the augmentation are layers of the model (`apps/speech/models.py`), so training
sees what serving sees. Padding changes nothing: the front end trims it.
"""

import numpy as np
import tensorflow as tf

from shared import data as shared_data


def waveform_dataset(waveforms, targets):
    """A dataset of `(waveform [samples], target)` from a list of variable-length numpy waveforms."""
    lengths = np.array([len(waveform) for waveform in waveforms], dtype=np.int64)
    ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(waveforms).astype(np.float32), lengths)
    return tf.data.Dataset.from_tensor_slices((ragged, np.asarray(targets)))


def batches(waveforms, targets, batch_size, shuffle=False, seed=0, batch_map_fn=None):
    """Zero-padded batches `(waveforms [batch, longest], targets)`; `batch_map_fn` maps whole batches."""
    dataset = waveform_dataset(waveforms, targets).cache()
    if shuffle:
        dataset = dataset.shuffle(len(waveforms), seed=seed, reshuffle_each_iteration=True)
    def to_batch(waveforms, targets):
        batch = (waveforms.to_tensor(), targets)  # zero padding to the longest clip of the batch
        return batch_map_fn(*batch) if batch_map_fn else batch

    dataset = dataset.ragged_batch(batch_size).map(to_batch, num_parallel_calls=shared_data.AUTOTUNE)
    return dataset.prefetch(shared_data.AUTOTUNE)


def train_and_validation(train, validation, config, batch_map_fn=None):
    """Shuffled training batches and validation batches (twice as large) from `(waveforms, targets)` pairs."""
    return (batches(*train, config.batch_size, shuffle=True, seed=config.seed, batch_map_fn=batch_map_fn),
            batches(*validation, config.batch_size * 2, batch_map_fn=batch_map_fn))


def feature_statistics(dataset, front_end):
    """Per-mel-bin mean and variance of `front_end`'s features over a dataset of `(waveforms, targets)` batches."""
    import keras

    normalization = keras.layers.Normalization(axis=-1, dtype="float32")  # statistics in float32 under any policy
    normalization.adapt(dataset.map(lambda waveforms, *_targets: front_end(waveforms),
                                    num_parallel_calls=shared_data.AUTOTUNE))
    return (keras.ops.convert_to_numpy(normalization.mean).reshape(-1),
            keras.ops.convert_to_numpy(normalization.variance).reshape(-1))


def pad_batch(waveforms):
    """Zero-pad a list of waveforms to `float32 [batch, longest]` (the front end ignores the padding)."""
    longest = max(len(waveform) for waveform in waveforms)
    batch = np.zeros((len(waveforms), longest), dtype=np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = waveform
    return batch
