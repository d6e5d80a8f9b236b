"""From decoded clips to tf.data pipelines of cached log-mel features."""

import numpy as np
import tensorflow as tf

from apps.speech import features as speech_features
from shared import data as shared_data


def waveform_dataset(waveforms, targets):
    """A dataset of `(waveform [samples], target)` from a list of variable-length numpy waveforms."""
    lengths = np.array([len(waveform) for waveform in waveforms], dtype=np.int64)
    ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(waveforms).astype(np.float32), lengths)
    return tf.data.Dataset.from_tensor_slices((ragged, np.asarray(targets)))


def feature_dataset(waveforms, targets, front_end):
    """`(log-mel [frames, mels], target)` computed once with the front end, then cached in memory."""

    def to_features(waveform, target):
        return front_end(waveform[tf.newaxis, :])[0], target

    dataset = waveform_dataset(waveforms, targets)
    return dataset.map(to_features, num_parallel_calls=shared_data.AUTOTUNE).cache()


def feature_statistics(dataset):
    """Per-mel-bin mean and variance over a dataset of `(features [frames, mels], target)`; fills its cache."""
    import keras

    normalization = keras.layers.Normalization(axis=-1)
    normalization.adapt(dataset.map(lambda features, _target: features, num_parallel_calls=shared_data.AUTOTUNE)
                        .batch(256))
    return (keras.ops.convert_to_numpy(normalization.mean).reshape(-1),
            keras.ops.convert_to_numpy(normalization.variance).reshape(-1))


def train_and_validation(train_waveforms, train_targets, validation_waveforms, validation_targets, config,
                         front_end, target_map=None):
    """Cached, shuffled, augmented train pipeline; cached validation pipeline; per-bin statistics."""
    train_features = feature_dataset(train_waveforms, train_targets, front_end)
    mean, variance = feature_statistics(train_features)
    augment = speech_features.augment(config)

    def train_batch(features, targets):
        features, targets = augment(features, targets)
        return target_map(features, targets) if target_map else (features, targets)

    train = shared_data.pipeline(train_features, config.batch_size, shuffle=True, seed=config.seed, cache=False,
                                 batch_map_fn=train_batch)
    validation = shared_data.pipeline(feature_dataset(validation_waveforms, validation_targets, front_end),
                                      config.batch_size * 2, cache=False, batch_map_fn=target_map)
    return train, validation, mean, variance


def pad_batch(waveforms):
    """Zero-pad a list of waveforms to `float32 [batch, longest]` (the front end ignores the padding)."""
    longest = max(len(waveform) for waveform in waveforms)
    batch = np.zeros((len(waveforms), longest), dtype=np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = waveform
    return batch


def predict_in_batches(predict, waveforms, batch_size=64):
    """Call a serving `predict(waveforms=...)` over a list of waveforms; concatenate every output."""
    outputs = [predict(waveforms=pad_batch(waveforms[start:start + batch_size]))
               for start in range(0, len(waveforms), batch_size)]
    return {key: np.concatenate([output[key] for output in outputs]) for key in outputs[0]}
