"""Augmentation for new voices, and per-utterance feature normalization: Keras layers of the digits model.

- `WaveAugment` (waveforms, training only): speed perturbation as in Kaldi (each clip resampled by a factor
  drawn from `speed_factors`, e.g. 0.9, 1.0, 1.1: speed 1.1 makes a clip 1/1.1 as long and its pitch and
  formants 1.1 times as high; `apps/speech/resample.py` does it in the graph), and reverberation (each clip,
  with probability `reverb_probability`, convolved with a synthetic room impulse response: a direct path plus
  exponentially decaying Gaussian noise whose RT60 is drawn from `reverb_seconds`, at a random
  direct-to-reverberant ratio of 0-10 dB).
- `FrequencyWarp` (log-mel features, training only): vocal-tract-length-style warping, each clip's spectrum
  read at frequency `alpha * f` with `alpha` drawn from `1 +- frequency_warp` (interpolated between mel bins).
- `UtteranceNormalization` (log-mel features, always, training and serving): cepstral mean (and variance)
  normalization per clip and mel bin over its active frames (within 30 dB of its loudest frame); padding and
  silent frames are set to the lowest normalized value of the clip.

Gain needs no augmentation: the front end divides every clip by its peak (`LogMelFrontEnd`).
"""

import keras
import numpy as np
import tensorflow as tf

from apps.speech.config import SAMPLE_RATE
from apps.speech.resample import resample

ACTIVE_RANGE = np.log(1e3)  # natural-log power: frames within 30 dB of the loudest count as active
DIRECT_TO_REVERBERANT_DB = (0.0, 10.0)


def change_speed(waveforms, factor, sample_rate=SAMPLE_RATE):
    """`float32 [batch, samples]` played `factor` times as fast: `ceil(samples / factor)` samples, pitch times
    `factor` (resampled from `factor * sample_rate` to `sample_rate`)."""
    if factor == 1:
        return tf.convert_to_tensor(waveforms, tf.float32)
    return resample(waveforms, int(round(sample_rate * factor)), sample_rate)


def room_impulse_responses(rt60_seconds, direct_to_reverberant_db, num_taps, sample_rate, seed):
    """Synthetic impulse responses `[batch, num_taps]`: 1 at tap 0, then Gaussian noise decaying by 60 dB in
    `rt60_seconds` `[batch]`, its energy `direct_to_reverberant_db` `[batch]` below the direct path's."""
    taps = tf.range(1, num_taps, dtype=tf.float32)[tf.newaxis, :]
    decay = tf.exp(-np.log(1e3) * taps / (rt60_seconds[:, tf.newaxis] * sample_rate))
    tail = keras.random.normal([tf.shape(rt60_seconds)[0], num_taps - 1], seed=seed) * decay
    energy = tf.reduce_sum(tf.square(tail), axis=1, keepdims=True)
    tail *= tf.sqrt(tf.pow(10.0, -direct_to_reverberant_db[:, tf.newaxis] / 10.0) / tf.maximum(energy, 1e-12))
    return tf.concat([tf.ones_like(tail[:, :1]), tail], axis=1)


def convolve(waveforms, impulse_responses):
    """Full linear convolution of each row with its impulse response (FFT): `[batch, samples + taps - 1]`."""
    length = tf.shape(waveforms)[1] + tf.shape(impulse_responses)[1] - 1
    fft_length = tf.cast(2 ** tf.math.ceil(tf.math.log(tf.cast(length, tf.float32)) / np.log(2.0)), tf.int32)
    spectrum = tf.signal.rfft(waveforms, [fft_length]) * tf.signal.rfft(impulse_responses, [fft_length])
    return tf.signal.irfft(spectrum, [fft_length])[:, :length]


@keras.saving.register_keras_serializable(package="dlsuite_speech")
class WaveAugment(keras.layers.Layer):
    """Waveforms `[batch, samples]` -> waveforms (another length) with speed change and reverberation, per clip,
    when `training=True`; unchanged otherwise. Padding stays zero-ish: the front end trims it."""

    def __init__(self, speed_factors=(), reverb_probability=0.0, reverb_seconds=(0.1, 0.6), sample_rate=SAMPLE_RATE,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if any(not 0.5 <= factor <= 2 for factor in speed_factors) or len(reverb_seconds) != 2:
            raise ValueError(f"Invalid arguments. Received: speed_factors={speed_factors!r}, "
                             f"reverb_seconds={reverb_seconds!r}. Expected factors in [0.5, 2] and (low, high).")
        self.speed_factors = tuple(float(factor) for factor in speed_factors)
        self.reverb_probability, self.reverb_seconds = float(reverb_probability), tuple(map(float, reverb_seconds))
        self.sample_rate, self.seed = int(sample_rate), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, waveforms, training=None):
        waveforms = tf.convert_to_tensor(waveforms, tf.float32)
        if not training:
            return waveforms
        if len(self.speed_factors) > 1 or self.speed_factors not in ((), (1.0,)):
            waveforms = self._speed(waveforms)
        if self.reverb_probability:
            waveforms = self._reverberate(waveforms)
        return waveforms

    def _speed(self, waveforms):
        """Every factor applied to the whole batch, then each clip keeps one, drawn at random."""
        variants = [change_speed(waveforms, factor, self.sample_rate) for factor in self.speed_factors]
        longest = tf.reduce_max(tf.stack([tf.shape(variant)[1] for variant in variants]))
        stacked = tf.stack([tf.pad(variant, [[0, 0], [0, longest - tf.shape(variant)[1]]]) for variant in variants],
                           axis=1)  # [batch, factors, longest]
        choice = keras.random.randint([tf.shape(waveforms)[0]], 0, len(variants), seed=self.seed_generator)
        return tf.gather(stacked, choice, axis=1, batch_dims=1)

    def _reverberate(self, waveforms):
        batch = tf.shape(waveforms)[0]
        rt60 = keras.random.uniform([batch], *self.reverb_seconds, seed=self.seed_generator)
        ratio = keras.random.uniform([batch], *DIRECT_TO_REVERBERANT_DB, seed=self.seed_generator)
        num_taps = max(2, int(self.reverb_seconds[1] * self.sample_rate))
        wet = convolve(waveforms, room_impulse_responses(rt60, ratio, num_taps, self.sample_rate, self.seed_generator))
        dry = tf.pad(waveforms, [[0, 0], [0, num_taps - 1]])
        apply = keras.random.uniform([batch, 1], seed=self.seed_generator) < self.reverb_probability
        return tf.where(apply, wet, dry)

    def get_config(self):
        return {**super().get_config(), "speed_factors": list(self.speed_factors),
                "reverb_probability": self.reverb_probability, "reverb_seconds": list(self.reverb_seconds),
                "sample_rate": self.sample_rate, "seed": self.seed}


def _hertz_to_mel(hertz):
    return 1127.0 * tf.math.log1p(hertz / 700.0)  # the scale of tf.signal.linear_to_mel_weight_matrix


@keras.saving.register_keras_serializable(package="dlsuite_speech")
class FrequencyWarp(keras.layers.Layer):
    """Log-mel `[batch, frames, mels]` -> the same, each clip's spectrum read at `alpha * f` (`alpha` uniform in
    `1 +- max_warp`, per clip) when `training=True`: alpha > 1 moves formants down, as a longer vocal tract.
    The mel bins are those of `tf.signal.linear_to_mel_weight_matrix(lower_edge_hertz, upper_edge_hertz)`."""

    def __init__(self, max_warp=0.0, lower_edge_hertz=20.0, upper_edge_hertz=SAMPLE_RATE / 2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= max_warp < 1:
            raise ValueError(f"Invalid value for argument max_warp. Received: max_warp={max_warp}. Expected [0, 1).")
        self.max_warp, self.lower_edge_hertz, self.upper_edge_hertz = float(max_warp), float(lower_edge_hertz), float(
            upper_edge_hertz)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, features, training=None):
        if not training or not self.max_warp:
            return features
        num_bins = features.shape[-1]
        low, high = _hertz_to_mel(self.lower_edge_hertz), _hertz_to_mel(self.upper_edge_hertz)
        step = (high - low) / (num_bins + 1)
        centers_mel = low + step * tf.range(1, num_bins + 1, dtype=tf.float32)
        centers_hertz = 700.0 * (tf.exp(centers_mel / 1127.0) - 1.0)
        alpha = keras.random.uniform([tf.shape(features)[0], 1], 1 - self.max_warp, 1 + self.max_warp,
                                     seed=self.seed_generator)
        source = (_hertz_to_mel(centers_hertz[tf.newaxis, :] * alpha) - low) / step - 1.0  # [batch, bins]
        source = tf.clip_by_value(source, 0.0, num_bins - 1.0)
        below = tf.minimum(tf.floor(source), num_bins - 2.0)
        weight = (source - below)[:, tf.newaxis, :]
        below = tf.cast(below, tf.int32)
        gather = lambda index: tf.gather(features, tf.broadcast_to(index[:, tf.newaxis, :], tf.shape(features)),
                                         batch_dims=2)
        return gather(below) * (1.0 - weight) + gather(below + 1) * weight

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_warp": self.max_warp, "lower_edge_hertz": self.lower_edge_hertz,
                "upper_edge_hertz": self.upper_edge_hertz, "seed": self.seed}


@keras.saving.register_keras_serializable(package="dlsuite_speech")
class UtteranceNormalization(keras.layers.Layer):
    """Log-mel `[batch, frames, mels]` -> per-clip CMVN: minus each bin's mean over the clip's active frames
    (`mode="mean"`), divided by its standard deviation too (`"mean_variance"`). Inactive frames (more than 30 dB
    below the loudest, e.g. padding) take the clip's lowest normalized value."""

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "mean_variance"):
            raise ValueError(f"Invalid value for argument mode. Received: mode={mode!r}. "
                             "Expected 'mean' or 'mean_variance'.")
        self.mode = mode

    def call(self, features):
        energy = tf.reduce_logsumexp(features, axis=2)  # [batch, frames]
        active = energy >= tf.reduce_max(energy, axis=1, keepdims=True) - ACTIVE_RANGE
        weights = tf.cast(active, features.dtype)[:, :, tf.newaxis]
        count = tf.reduce_sum(weights, axis=1, keepdims=True)
        mean = tf.reduce_sum(features * weights, axis=1, keepdims=True) / count
        normalized = features - mean
        if self.mode == "mean_variance":
            variance = tf.reduce_sum(tf.square(normalized) * weights, axis=1, keepdims=True) / count
            normalized /= tf.sqrt(variance + 1e-3)
        lowest = tf.reduce_min(tf.where(weights > 0, normalized, np.inf), axis=[1, 2], keepdims=True)
        return tf.where(weights > 0, normalized, lowest)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def layers_of(config):
    """The model-building keyword arguments of a `SpeechConfig`'s augmentation and normalization (None when off)."""
    speed = config.speed_factors if config.speed_factors not in ((), (1.0,)) else ()
    waveform = (WaveAugment(speed, config.reverb_probability, config.reverb_seconds, seed=config.seed,
                            dtype="float32", name="wave_augment")
                if speed or config.reverb_probability else None)
    warp = (FrequencyWarp(config.frequency_warp, seed=config.seed, dtype="float32", name="frequency_warp")
            if config.frequency_warp else None)
    return {"waveform_augmentation": waveform, "frequency_warp": warp,
            "utterance_normalization": normalization_of(config)}


def normalization_of(config):
    """The `UtteranceNormalization` of a config, or None (`utterance_normalization="none"`)."""
    if config.utterance_normalization == "none":
        return None
    return UtteranceNormalization(config.utterance_normalization, dtype="float32", name="utterance_normalization")


def normalized_features(config, front_end):
    """`fn(waveforms) -> features` as the model's `Normalization` layer sees them (without the training-only
    augmentation): what `data.feature_statistics` adapts on."""
    normalization = normalization_of(config)
    return (lambda waveforms: normalization(front_end(waveforms))) if normalization else front_end
