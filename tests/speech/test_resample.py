"""The in-graph resampler (apps/speech/resample.py) against scipy's `resample_poly` on real FSDD audio, and the
WAV decoder on other rates, stereo and unsupported rates."""

import io
import math
import wave

import numpy as np
import pytest
import scipy.signal

RATES = (11025, 16000, 22050, 44100, 48000)
TOLERANCE = 1e-6  # absolute, on waveforms peak-normalized to about 0.3 (measured: < 1e-7)


def wav(waveform, rate, channels=1):
    """16-bit PCM WAV bytes of `waveform` (`[samples]` or `[samples, channels]`, in [-1, 1])."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes((np.clip(waveform, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def at_rate(waveform, rate):
    """An 8 kHz clip upsampled to `rate` by scipy (how the tests make 16 and 44.1 kHz versions of FSDD clips)."""
    divisor = math.gcd(rate, 8000)
    return scipy.signal.resample_poly(waveform.astype(np.float64), rate // divisor, 8000 // divisor)


@pytest.fixture(scope="module")
def clip(data_root):
    import tensorflow as tf

    wav_bytes = (data_root / "fsdd" / "recordings" / "7_jackson_12.wav").read_bytes()
    return tf.audio.decode_wav(wav_bytes).audio[:, 0].numpy()


@pytest.mark.parametrize("rate", RATES)
def test_resample_matches_scipy_resample_poly_both_ways(clip, rate):
    from apps.speech.resample import resample

    divisor = math.gcd(rate, 8000)
    high = at_rate(clip, rate)
    down = resample(high[np.newaxis].astype(np.float32), rate, 8000).numpy()[0]
    expected = scipy.signal.resample_poly(high, 8000 // divisor, rate // divisor)
    assert down.shape == expected.shape
    np.testing.assert_allclose(down, expected, atol=TOLERANCE)
    up = resample(clip[np.newaxis], 8000, rate).numpy()[0]
    np.testing.assert_allclose(up, high, atol=TOLERANCE)


def test_same_rate_is_unchanged(clip):
    from apps.speech.resample import resample

    np.testing.assert_array_equal(resample(clip[np.newaxis], 8000, 8000).numpy()[0], clip)


def test_wav_bytes_of_any_rate_and_stereo_decode_to_8khz(clip):
    import tensorflow as tf

    from apps.speech.features import decode_wav_bytes, resample_waveforms

    wavs = [wav(clip, 8000), wav(at_rate(clip, 16000), 16000), wav(at_rate(clip, 44100), 44100),
            wav(np.stack([at_rate(clip, 22050), np.zeros_like(at_rate(clip, 22050))], axis=1) * 2, 22050, channels=2)]
    decoded = decode_wav_bytes(tf.constant(wavs)).numpy()
    np.testing.assert_allclose(decoded[0, :len(clip)], clip, atol=1e-4)  # 8 kHz: only 16-bit rounding
    for row, rate in zip(decoded[1:], (16000, 44100, 22050)):  # stereo (2x, 0) mixes down to x
        high = (at_rate(clip, rate) * 32767).astype(np.int16) / 32768  # what the WAV holds
        divisor = math.gcd(rate, 8000)
        expected = scipy.signal.resample_poly(high, 8000 // divisor, rate // divisor)
        np.testing.assert_allclose(row[:len(expected)], expected, atol=1e-4)  # a few 16-bit steps
    batch = np.zeros((2, len(at_rate(clip, 48000))), np.float32)
    batch[0, :len(clip)], batch[1] = clip, at_rate(clip, 48000)
    resampled = resample_waveforms(batch, tf.constant([8000, 48000])).numpy()
    np.testing.assert_allclose(resampled[1, :len(clip)], scipy.signal.resample_poly(batch[1], 1, 6)[:len(clip)],
                               atol=TOLERANCE)
    np.testing.assert_array_equal(resampled[0, :len(clip)], clip)


@pytest.mark.parametrize("rate", [2000, 3999, 200000])
def test_unsupported_rates_are_refused_with_the_range(clip, rate):
    import tensorflow as tf

    from apps.speech.features import decode_wav_bytes

    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"(?s)Unsupported sample rate. Received: sample_rate=.*{rate}.*Expected 4000 to 192000"):
        decode_wav_bytes(tf.constant([wav(clip, 8000), wav(clip[:400], rate)]))
