"""Augmentation for new voices (apps/speech/augment.py): speed, reverberation, frequency warping, per-clip CMVN,
synthesised digits as extra speakers, their config checks, and a model holding them all that reloads."""

import dataclasses

import keras
import numpy as np
import pytest

from apps.speech import augment, negatives
from apps.speech import config as speech_config
from apps.speech.data import pad_batch
from apps.speech.features import front_end, spec_augment
from apps.speech.models import build_classifier
from shared.errors import ConfigError


def tone(seconds, frequency=440.0, rate=8000):
    time = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * time) * np.hanning(len(time))).astype(np.float32)


def dominant_hertz(waveform, rate=8000):
    return np.argmax(np.abs(np.fft.rfft(waveform))) * rate / len(waveform)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_change_scales_length_and_pitch(factor):
    clip = tone(0.5)
    faster = augment.change_speed(clip[np.newaxis], factor).numpy()[0]
    assert faster.dtype == np.float32 and len(faster) == int(np.ceil(len(clip) / factor))
    assert dominant_hertz(faster) == pytest.approx(440 * factor, rel=0.01)
    np.testing.assert_array_equal(augment.change_speed(clip[np.newaxis], 1.0).numpy()[0], clip)


def test_wave_augment_is_identity_off_and_out_of_training():
    batch = np.stack([tone(0.5), tone(0.5, 300.0)])
    layer = augment.WaveAugment((0.9, 1.1), reverb_probability=1.0, seed=1)
    np.testing.assert_array_equal(layer(batch, training=False).numpy(), batch)
    np.testing.assert_array_equal(augment.WaveAugment(seed=1)(batch, training=True).numpy(), batch)
    off = augment.layers_of(speech_config.DigitsConfig())  # the fields' defaults: every one off
    assert set(off.values()) == {None}
    assert augment.layers_of(speech_config.digits_default())["waveform_augmentation"] is not None  # reverberation


def test_wave_augment_picks_a_speed_per_clip():
    batch = np.stack([tone(0.5)] * 16)
    augmented = augment.WaveAugment((0.9, 1.1), seed=3)(batch, training=True).numpy()
    assert augmented.shape == (16, int(np.ceil(4000 / 0.9)))
    lengths = [np.flatnonzero(np.abs(row) > 1e-3)[-1] for row in augmented]  # the 1.1 clips end early
    assert min(lengths) < 3700 < max(lengths)
    assert sorted({round(dominant_hertz(row[: length + 1]) / 440, 1) for row, length in zip(augmented, lengths)}) \
        == [0.9, 1.1]


def test_reverberation_keeps_the_direct_path_and_adds_a_decaying_tail():
    rt60 = np.array([0.3, 0.3], np.float32)
    responses = augment.room_impulse_responses(rt60, np.array([0.0, 10.0], np.float32), 2400, 8000, seed=1).numpy()
    assert responses.shape == (2, 2400) and (responses[:, 0] == 1).all()
    tail_energy = (responses[:, 1:] ** 2).sum(axis=1)
    np.testing.assert_allclose(tail_energy, [1.0, 0.1], rtol=1e-4)  # direct-to-reverberant ratio 0 and 10 dB
    assert (responses[0, 1:800] ** 2).sum() > 50 * (responses[0, 1600:] ** 2).sum()  # -60 dB in 0.3 s
    clip = tone(0.25)[np.newaxis]
    np.testing.assert_allclose(augment.convolve(clip, np.array([[1.0, 0.0, 0.0]], np.float32)).numpy()[0, :2000],
                               clip[0], atol=1e-6)
    wet = augment.WaveAugment(reverb_probability=1.0, reverb_seconds=(0.2, 0.4), seed=2)(clip, training=True)
    assert wet.shape == (1, 2000 + 3200 - 1) and np.abs(wet.numpy()[0, 2000:]).max() > 1e-3  # the tail


def test_frequency_warp_moves_spectra_only_in_training():
    features = front_end(speech_config.digits_default())(np.stack([tone(0.5, 1000.0)] * 8)).numpy()
    layer = augment.FrequencyWarp(0.2, seed=1)
    np.testing.assert_array_equal(layer(features, training=False).numpy(), features)
    np.testing.assert_allclose(augment.FrequencyWarp(1e-7, seed=1)(features, training=True).numpy(), features,
                               atol=1e-3)
    warped = layer(features, training=True).numpy()
    assert warped.shape == features.shape and warped.dtype == np.float32
    peaks = warped.mean(axis=1).argmax(axis=1)
    assert len(set(peaks)) > 1  # each clip got its own alpha: the 1 kHz peak moved to different bins


def test_utterance_normalization_removes_a_channel_and_ignores_padding():
    extractor = front_end(speech_config.digits_default())
    features = extractor(pad_batch([tone(0.6, 500.0), tone(0.3, 500.0)])).numpy()
    layer = augment.UtteranceNormalization("mean")
    normalized = layer(features).numpy()
    energy = np.log(np.exp(features).sum(axis=2))
    active = energy >= energy.max(axis=1, keepdims=True) - augment.ACTIVE_RANGE
    np.testing.assert_allclose(normalized[0][active[0]].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(layer(features + 2.5).numpy(), normalized, atol=1e-4)  # a constant offset vanishes
    dense = np.random.default_rng(0).normal(size=(2, 30, 40)).astype(np.float32)  # every frame active
    channel = np.linspace(-2, 2, 40, dtype=np.float32)  # a per-bin gain (a microphone's response)
    both = augment.UtteranceNormalization("mean_variance")
    np.testing.assert_allclose(both(dense + channel).numpy(), both(dense).numpy(), atol=1e-4)
    np.testing.assert_allclose(both(dense).numpy().std(axis=1), 1.0, atol=3e-3)  # + 1e-3 in the variance


def test_synthetic_digits_are_labelled_8khz_speech(tmp_path, monkeypatch):
    monkeypatch.setenv("DLSUITE_CACHE_DIR", str(tmp_path))
    waveforms, digits = negatives.synthetic_digits(10, seed=1)
    assert digits == list(range(10))
    assert all(waveform.dtype == np.float32 and 1500 < len(waveform) < 2 * 8000 for waveform in waveforms)
    again, _ = negatives.synthetic_digits(10, seed=1)  # from the cache
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(waveforms))


def test_synthetic_digits_without_espeak_stop_before_any_work(tmp_path, monkeypatch):
    from apps.speech.tasks.digits import DigitsTask
    from shared.errors import DataError

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DataError, match=r"espeak-ng, which is not installed\. Received: synthetic_digits=1000\. "
                                        r"Expected espeak-ng on the PATH\. Fix: .* --set synthetic_digits=0"):
        DigitsTask().check_inputs(speech_config.digits_default(), str(tmp_path))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"speed_factors": (0.9, 3.0)}, "speed_factors"),
    ({"reverb_probability": 1.5}, "reverb_probability"),
    ({"reverb_seconds": (0.5, 0.1)}, "reverb_seconds=.*Expected two RT60 times"),
    ({"frequency_warp": 0.7}, "frequency_warp"),
    ({"utterance_normalization": "per_speaker"}, "utterance_normalization"),
    ({"synthetic_digits": -1}, "synthetic_digits"),
])
def test_bad_augmentation_values_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(speech_config.digits_default(), **overrides)


def test_a_model_with_every_augmentation_runs_and_reloads(tmp_path):
    config = dataclasses.replace(speech_config.digits_smoke(), speed_factors=(0.9, 1.0, 1.1), reverb_probability=0.5,
                                 frequency_warp=0.1, utterance_normalization="mean_variance")
    model = build_classifier(front_end(config), spec_augment(config), np.zeros(40), np.ones(40),
                             filters=config.filters, dense_units=config.dense_units, **augment.layers_of(config))
    names = [layer.name for layer in model.layers]
    assert names[1:7] == ["wave_augment", "log_mel_front_end", "spec_augment", "frequency_warp",
                          "utterance_normalization", "normalize"]
    batch = pad_batch([tone(0.5), tone(0.4, 300.0)])
    assert model(batch, training=True).shape == (2, 10)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded(batch, training=False), model(batch, training=False), atol=1e-5)
