"""The audio front end and the training-only augmentation: Keras layers inside every speech model.

`LogMelFrontEnd` maps a batch of 8 kHz waveforms of any length `[batch, samples]`
to log-mel spectrograms `[batch, frames, num_mel_bins]` of a fixed size:

1. peak-normalize each waveform (gain does not matter),
2. trim leading and trailing samples quieter than `silence_threshold` of the peak,
3. center what is left in a window of `num_samples` (zero-pad, or crop the middle),
4. STFT -> power spectrum -> mel filterbank -> log (`tf.signal`).

Because of 2 and 3, zero padding anywhere around a clip (a batch padded to its
longest clip, silence added by a caller) leaves the features unchanged.

`SpecAugment` works on those log-mel features, only when called with `training=True`:
a random time shift, white noise at a random SNR (added in the mel power domain) and
SpecAugment time and frequency masks. Both layers are registered Keras serializables, so the
model logged to MLflow reloads with them (`shared/mlflow_model.py` carries their code).
"""

import keras
import tensorflow as tf

from apps.speech.config import SAMPLE_RATE
from apps.speech.resample import resample

LOG_OFFSET = 1e-6


@keras.saving.register_keras_serializable(package="dlsuite_speech")
class LogMelFrontEnd(keras.layers.Layer):
    """Waveforms `float32 [batch, samples]` at 8 kHz -> log-mel `float32 [batch, frames, num_mel_bins]`."""

    def __init__(self, num_samples, frame_length=200, frame_step=80, num_mel_bins=40, silence_threshold=0.01,
                 sample_rate=SAMPLE_RATE, **kwargs):
        super().__init__(**kwargs)
        if num_samples < frame_length:
            raise ValueError(
                f"Invalid value for argument num_samples. Received: num_samples={num_samples}, "
                f"frame_length={frame_length}. Expected num_samples >= frame_length."
            )
        self.num_samples = int(num_samples)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.num_mel_bins = int(num_mel_bins)
        self.silence_threshold = float(silence_threshold)
        self.sample_rate = int(sample_rate)
        self.fft_length = 1 << (self.frame_length - 1).bit_length()
        self.num_frames = 1 + (self.num_samples - self.frame_length) // self.frame_step

    def fit_length(self, waveforms):
        """Peak-normalize, trim silence and center in a window of `num_samples` samples (`fit_length`)."""
        return fit_length(waveforms, self.num_samples, self.silence_threshold)

    def call(self, waveforms):
        signals = self.fit_length(waveforms)
        spectrograms = tf.signal.stft(signals, self.frame_length, self.frame_step, fft_length=self.fft_length)
        power = tf.square(tf.abs(spectrograms))
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            self.num_mel_bins, self.fft_length // 2 + 1, self.sample_rate, lower_edge_hertz=20.0,
            upper_edge_hertz=self.sample_rate / 2,
        )
        return tf.math.log(tf.matmul(power, mel_matrix) + LOG_OFFSET)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_frames, self.num_mel_bins)

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples, "frame_length": self.frame_length,
                "frame_step": self.frame_step, "num_mel_bins": self.num_mel_bins,
                "silence_threshold": self.silence_threshold, "sample_rate": self.sample_rate}


def fit_length(waveforms, num_samples, silence_threshold):
    """Waveforms `[batch, samples]` (zero-padded) -> `[batch, num_samples]`: each peak-normalized, its samples
    below `silence_threshold` of the peak trimmed from both ends, then centered (short clips) or cropped to
    its middle (long ones). Every speech front end starts here."""
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    # One extra zero sample makes empty inputs safe; trimming removes it again.
    waveforms = tf.pad(waveforms, [[0, 0], [0, 1]])
    peak = tf.reduce_max(tf.abs(waveforms), axis=1, keepdims=True)
    waveforms = waveforms / tf.maximum(peak, 1e-6)
    active = tf.cast(tf.abs(waveforms) > silence_threshold, tf.int32)
    total = tf.shape(waveforms)[1]
    first = tf.argmax(active, axis=1, output_type=tf.int32)
    end = total - tf.argmax(tf.reverse(active, [1]), axis=1, output_type=tf.int32)
    length = tf.where(tf.reduce_any(active > 0, axis=1), end - first, 0)
    start = first + tf.maximum(length - num_samples, 0) // 2  # crop the middle of long clips
    kept = tf.minimum(length, num_samples)
    offset = (num_samples - kept) // 2  # center short clips
    positions = tf.range(num_samples)[tf.newaxis, :] - offset[:, tf.newaxis]
    inside = (positions >= 0) & (positions < kept[:, tf.newaxis])
    indices = tf.clip_by_value(start[:, tf.newaxis] + positions, 0, total - 1)
    return tf.where(inside, tf.gather(waveforms, indices, batch_dims=1), 0.0)


def front_end(config):
    """The front end of a `SpeechConfig`."""
    return LogMelFrontEnd(
        num_samples=int(round(config.clip_seconds * SAMPLE_RATE)), frame_length=config.frame_length,
        frame_step=config.frame_step, num_mel_bins=config.num_mel_bins, silence_threshold=config.silence_threshold,
        dtype="float32", name="log_mel_front_end",  # an FFT and a log: float32 under any precision policy
    )


def decode_wav_bytes(wav_bytes):
    """WAV file bytes `string [batch]` -> zero-padded 8 kHz waveforms `float32 [batch, samples]`.

    Any rate the header states within `resample.MIN_RATE`..`MAX_RATE` is resampled to 8 kHz
    (`apps/speech/resample.py`); several channels are mixed down to mono."""

    def decode(contents):
        audio, sample_rate = tf.audio.decode_wav(contents)
        return resample(tf.reduce_mean(audio, axis=1)[tf.newaxis], sample_rate, SAMPLE_RATE)[0]

    waveforms = tf.map_fn(decode, wav_bytes, fn_output_signature=tf.RaggedTensorSpec([None], tf.float32, 0))
    return waveforms.to_tensor()


def resample_waveforms(waveforms, sample_rates):
    """Zero-padded waveforms `float32 [batch, samples]`, each at its `sample_rates` `int32 [batch]` -> the same
    at 8 kHz, zero-padded (the front end ignores the padding, which resampling keeps near zero)."""

    def convert(row):
        waveform, sample_rate = row
        return resample(waveform[tf.newaxis], sample_rate, SAMPLE_RATE)[0]

    waveforms = tf.map_fn(convert, (waveforms, sample_rates),
                          fn_output_signature=tf.RaggedTensorSpec([None], tf.float32, 0))
    return waveforms.to_tensor()


# === Training-only augmentation (batches of log-mel features) ===


@keras.saving.register_keras_serializable(package="dlsuite_speech")
class SpecAugment(keras.layers.Layer):
    """Log-mel `[batch, frames, mels]` -> the same, augmented when `training=True`, unchanged otherwise.

    Per example: a roll by up to `time_shift_frames` frames, white noise at an SNR drawn from
    `noise_snr_db` (low, high; empty: none), then `time_masks` bands of up to `time_mask_frames`
    frames and `frequency_masks` bands of up to `frequency_mask_bins` bins set to the example's mean.
    """

    def __init__(self, time_shift_frames=0, time_masks=0, time_mask_frames=0, frequency_masks=0,
                 frequency_mask_bins=0, noise_snr_db=(), seed=None, **kwargs):
        super().__init__(**kwargs)
        if len(noise_snr_db) not in (0, 2):
            raise ValueError(f"Invalid value for argument noise_snr_db. Received: noise_snr_db={noise_snr_db!r}. "
                             "Expected () or (low, high).")
        self.time_shift_frames, self.time_masks, self.time_mask_frames = time_shift_frames, time_masks, time_mask_frames
        self.frequency_masks, self.frequency_mask_bins = frequency_masks, frequency_mask_bins
        self.noise_snr_db, self.seed = tuple(float(value) for value in noise_snr_db), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, features, training=None):
        if not training:
            return features
        if self.time_shift_frames:
            features = self._time_shift(features)
        if self.noise_snr_db:
            features = self._add_noise(features)
        fill = tf.reduce_mean(features, axis=[1, 2], keepdims=True)
        for _ in range(self.time_masks):
            features = self._mask(features, self.time_mask_frames, axis=1, fill=fill)
        for _ in range(self.frequency_masks):
            features = self._mask(features, self.frequency_mask_bins, axis=2, fill=fill)
        return features

    def _time_shift(self, features):
        """Roll each example by a random number of frames in [-time_shift_frames, time_shift_frames]."""
        batch, frames = tf.shape(features)[0], tf.shape(features)[1]
        shifts = keras.random.randint([batch, 1], -self.time_shift_frames, self.time_shift_frames + 1,
                                      seed=self.seed_generator)
        indices = tf.math.floormod(tf.range(frames)[tf.newaxis, :] - shifts, frames)
        return tf.gather(features, indices, batch_dims=1)

    def _add_noise(self, features):
        """White noise at a random SNR: its power spectrum is flat, so add it in the mel power domain."""
        power = tf.exp(features) - LOG_OFFSET
        signal_power = tf.reduce_mean(power, axis=[1, 2], keepdims=True)
        snr = keras.random.uniform([tf.shape(features)[0], 1, 1], *self.noise_snr_db, seed=self.seed_generator)
        noise_power = signal_power * tf.pow(10.0, -snr / 10.0)
        jitter = keras.random.gamma(tf.shape(features), alpha=4.0, seed=self.seed_generator) / 4.0  # per bin
        return tf.math.log(tf.maximum(power, 0.0) + noise_power * jitter + LOG_OFFSET)

    def _mask(self, features, max_width, axis, fill):
        """One mask per example: a random band of up to `max_width` rows along `axis`."""
        batch, size = tf.shape(features)[0], tf.shape(features)[axis]
        width = keras.random.randint([batch, 1], 0, max_width + 1, seed=self.seed_generator)
        start = tf.cast(keras.random.uniform([batch, 1], seed=self.seed_generator)
                        * tf.cast(tf.maximum(size - width, 1), tf.float32), tf.int32)
        position = tf.range(size)[tf.newaxis, :]
        band = (position >= start) & (position < start + width)
        band = band[:, :, tf.newaxis] if axis == 1 else band[:, tf.newaxis, :]
        return tf.where(band, fill, features)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "time_shift_frames": self.time_shift_frames, "time_masks": self.time_masks,
                "time_mask_frames": self.time_mask_frames, "frequency_masks": self.frequency_masks,
                "frequency_mask_bins": self.frequency_mask_bins, "noise_snr_db": list(self.noise_snr_db),
                "seed": self.seed}


def spec_augment(config):
    """The training-only augmentation of a `SpeechConfig`."""
    return SpecAugment(
        time_shift_frames=config.time_shift_frames, time_masks=config.time_masks,
        time_mask_frames=config.time_mask_frames, frequency_masks=config.frequency_masks,
        frequency_mask_bins=config.frequency_mask_bins, noise_snr_db=config.noise_snr_db, seed=config.seed,
        dtype="float32", name="spec_augment",  # its float32 noise and masks meet the features: float32 too
    )
