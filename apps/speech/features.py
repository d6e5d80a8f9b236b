"""The audio front end, used both in tf.data (training) and in the exported model (serving).

`LogMelFrontEnd` maps a batch of 8 kHz waveforms of any length `[batch, samples]`
to log-mel spectrograms `[batch, frames, num_mel_bins]` of a fixed size:

1. peak-normalize each waveform (gain does not matter),
2. trim leading and trailing samples quieter than `silence_threshold` of the peak,
3. center what is left in a window of `num_samples` (zero-pad, or crop the middle),
4. STFT -> power spectrum -> mel filterbank -> log (`tf.signal`).

Because of 2 and 3, zero padding anywhere around a clip (a batch padded to its
longest clip, silence added by a caller) leaves the features unchanged.

The training-only augmentation (`augment`) works on batches of cached log-mel
features: a random time shift, SpecAugment time and frequency masks and white
noise at a random SNR, added in the mel power domain.
"""

import keras
import tensorflow as tf

from apps.speech.config import SAMPLE_RATE

LOG_OFFSET = 1e-6


@keras.saving.register_keras_serializable(package="dlsuite_speech")
class LogMelFrontEnd(keras.layers.Layer):
    """Waveforms `float32 [batch, samples]` at 8 kHz -> log-mel `float32 [batch, frames, num_mel_bins]`."""

    def __init__(self, num_samples, frame_length=200, frame_step=80, num_mel_bins=40, silence_threshold=0.01,
                 sample_rate=SAMPLE_RATE, **kwargs):
        super().__init__(trainable=False, **kwargs)
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
        """Peak-normalize, trim silence and center in a window of `num_samples` samples."""
        waveforms = tf.convert_to_tensor(waveforms, tf.float32)
        # One extra zero sample makes empty inputs safe; trimming removes it again.
        waveforms = tf.pad(waveforms, [[0, 0], [0, 1]])
        peak = tf.reduce_max(tf.abs(waveforms), axis=1, keepdims=True)
        waveforms = waveforms / tf.maximum(peak, 1e-6)
        active = tf.cast(tf.abs(waveforms) > self.silence_threshold, tf.int32)
        total = tf.shape(waveforms)[1]
        first = tf.argmax(active, axis=1, output_type=tf.int32)
        end = total - tf.argmax(tf.reverse(active, [1]), axis=1, output_type=tf.int32)
        length = tf.where(tf.reduce_any(active > 0, axis=1), end - first, 0)
        start = first + tf.maximum(length - self.num_samples, 0) // 2  # crop the middle of long clips
        kept = tf.minimum(length, self.num_samples)
        offset = (self.num_samples - kept) // 2  # center short clips
        positions = tf.range(self.num_samples)[tf.newaxis, :] - offset[:, tf.newaxis]
        inside = (positions >= 0) & (positions < kept[:, tf.newaxis])
        indices = tf.clip_by_value(start[:, tf.newaxis] + positions, 0, total - 1)
        return tf.where(inside, tf.gather(waveforms, indices, batch_dims=1), 0.0)

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


def front_end(config):
    """The front end of a `SpeechConfig`."""
    return LogMelFrontEnd(
        num_samples=int(round(config.clip_seconds * SAMPLE_RATE)), frame_length=config.frame_length,
        frame_step=config.frame_step, num_mel_bins=config.num_mel_bins, silence_threshold=config.silence_threshold,
        name="log_mel_front_end",
    )


def decode_wav_bytes(wav_bytes):
    """WAV file bytes `string [batch]` -> zero-padded waveforms `float32 [batch, samples]`; 8 kHz enforced."""

    def decode(contents):
        audio, sample_rate = tf.audio.decode_wav(contents, desired_channels=1)
        check = tf.debugging.assert_equal(
            sample_rate, SAMPLE_RATE, message=f"Wrong sample rate in WAV bytes. Expected {SAMPLE_RATE} Hz."
        )
        with tf.control_dependencies([check]):
            return tf.identity(audio[:, 0])

    waveforms = tf.map_fn(decode, wav_bytes, fn_output_signature=tf.RaggedTensorSpec([None], tf.float32, 0))
    return waveforms.to_tensor()


# === Training-only augmentation (batches of log-mel features) ===


def augment(config):
    """A batch map function `(features, targets) -> (augmented features, targets)`."""
    shift, time_masks, time_width = config.time_shift_frames, config.time_masks, config.time_mask_frames
    frequency_masks, frequency_width = config.frequency_masks, config.frequency_mask_bins
    snr_db = config.noise_snr_db

    def apply(features, targets):
        if shift:
            features = _time_shift(features, shift)
        if snr_db:
            features = _add_noise(features, *snr_db)
        fill = tf.reduce_mean(features, axis=[1, 2], keepdims=True)
        for _ in range(time_masks):
            features = _mask(features, time_width, axis=1, fill=fill)
        for _ in range(frequency_masks):
            features = _mask(features, frequency_width, axis=2, fill=fill)
        return features, targets

    return apply


def _time_shift(features, max_shift):
    """Roll each example by a random number of frames in [-max_shift, max_shift]."""
    batch, frames = tf.shape(features)[0], tf.shape(features)[1]
    shifts = tf.random.uniform([batch, 1], -max_shift, max_shift + 1, dtype=tf.int32)
    indices = tf.math.floormod(tf.range(frames)[tf.newaxis, :] - shifts, frames)
    return tf.gather(features, indices, batch_dims=1)


def _add_noise(features, low_db, high_db):
    """White noise at a random SNR: its power spectrum is flat, so add it in the mel power domain."""
    power = tf.exp(features) - LOG_OFFSET
    signal_power = tf.reduce_mean(power, axis=[1, 2], keepdims=True)
    snr = tf.random.uniform([tf.shape(features)[0], 1, 1], low_db, high_db)
    noise_power = signal_power * tf.pow(10.0, -snr / 10.0)
    jitter = tf.random.gamma(tf.shape(features), alpha=4.0) / 4.0  # per-bin fluctuation around the mean
    return tf.math.log(tf.maximum(power, 0.0) + noise_power * jitter + LOG_OFFSET)


def _mask(features, max_width, axis, fill):
    """One SpecAugment mask per example: a random band of up to `max_width` rows along `axis`."""
    batch, size = tf.shape(features)[0], tf.shape(features)[axis]
    width = tf.random.uniform([batch, 1], 0, max_width + 1, dtype=tf.int32)
    start = tf.cast(tf.random.uniform([batch, 1]) * tf.cast(tf.maximum(size - width, 1), tf.float32), tf.int32)
    position = tf.range(size)[tf.newaxis, :]
    band = (position >= start) & (position < start + width)
    band = band[:, :, tf.newaxis] if axis == 1 else band[:, tf.newaxis, :]
    return tf.where(band, fill, features)
