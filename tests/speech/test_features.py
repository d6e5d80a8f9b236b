"""The front end and the augmentation (layers of every speech model), synthetic utterances and the CTC metric."""

import numpy as np
import pytest

from apps.speech import config as speech_config
from apps.speech.tasks.digit_strings import digit_error_rate
from apps.speech.features import LogMelFrontEnd, SpecAugment, front_end, spec_augment
from apps.speech.fsdd import Clip
from apps.speech.utterances import label_matrix, make_utterances


def tone(seconds, frequency=440.0, rate=8000):
    time = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * time) * np.hanning(len(time))).astype(np.float32)


def test_features_ignore_silence_padding_and_gain():
    extractor = front_end(speech_config.digits_default())
    clip = tone(0.4)
    padded = np.concatenate([np.zeros(1234, np.float32), clip, np.zeros(3000, np.float32)])
    batch = np.zeros((3, len(padded)), np.float32)
    batch[0, : len(clip)] = clip
    batch[1] = padded
    batch[2, : len(clip)] = 0.1 * clip
    features = extractor(batch).numpy()
    assert features.shape == (3, extractor.num_frames, 40)
    np.testing.assert_allclose(features[1], features[0], atol=1e-5)
    np.testing.assert_allclose(features[2], features[0], rtol=1e-4, atol=1e-3)  # float rounding of the gain
    alone = extractor(clip[np.newaxis]).numpy()[0]
    np.testing.assert_allclose(alone, features[0], atol=1e-5)


def test_long_clips_are_center_cropped_and_empty_input_is_safe():
    extractor = LogMelFrontEnd(num_samples=8000)
    long_clip = np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    cropped = extractor.fit_length(long_clip[np.newaxis]).numpy()[0]
    start = (20000 - 8000) // 2
    np.testing.assert_allclose(cropped, long_clip[start:start + 8000] / np.abs(long_clip).max(), atol=1e-6)
    assert np.isfinite(extractor(np.zeros((2, 0), np.float32)).numpy()).all()
    with pytest.raises(ValueError, match=r"Received: num_samples=100, frame_length=200\. Expected num_samples >= "):
        LogMelFrontEnd(num_samples=100)


def test_augmentation_works_only_in_training_and_keeps_the_shape():
    layer = spec_augment(speech_config.digits_default())
    features = np.random.default_rng(0).normal(-5, 1, (4, 62, 40)).astype(np.float32)
    augmented = layer(features, training=True).numpy()
    assert augmented.shape == features.shape and np.isfinite(augmented).all()
    assert not np.allclose(augmented, features)
    assert not np.allclose(layer(features, training=True).numpy(), augmented)  # new draws every call
    np.testing.assert_array_equal(layer(features, training=False).numpy(), features)
    np.testing.assert_array_equal(layer(features).numpy(), features)


def test_layers_round_trip_through_their_config():
    extractor = front_end(speech_config.digits_default())
    assert LogMelFrontEnd.from_config(extractor.get_config()).get_config() == extractor.get_config()
    augmentation = spec_augment(speech_config.digits_default())
    assert SpecAugment.from_config(augmentation.get_config()).get_config() == augmentation.get_config()
    with pytest.raises(ValueError, match=r"Received: noise_snr_db=\(1\.0,\)\. Expected \(\) or \(low, high\)"):
        SpecAugment(noise_snr_db=(1.0,))


def test_utterances_are_deterministic_and_within_limits():
    config = speech_config.strings_default()
    clips = [Clip(digit, speaker, 0, tone(0.3 + 0.02 * digit, 200 + 50 * digit)) for digit in range(10)
             for speaker in ("george", "theo")]
    first = make_utterances(clips, 40, config, seed=3)
    again = make_utterances(clips, 40, config, seed=3)
    other = make_utterances(clips, 40, config, seed=4)
    assert [u.digits for u in first] == [u.digits for u in again]
    assert all(np.array_equal(a.waveform, b.waveform) for a, b in zip(first, again))
    assert [u.digits for u in first] != [u.digits for u in other]
    assert all(1 <= len(u.digits) <= 7 and len(u.waveform) <= 5 * 8000 for u in first)
    labels = label_matrix(first[:2], 7)
    assert labels.shape == (2, 7)
    assert list(labels[0][labels[0] > 0] - 1) == [int(d) for d in first[0].digits]


def test_digit_error_rate_is_edit_distance_over_reference_length():
    error_rate, accuracy, distances, lengths = digit_error_rate(["123", "45", "6"], ["13", "45", "67"])
    assert list(distances) == [1, 0, 1] and list(lengths) == [3, 2, 1]
    assert error_rate == pytest.approx(2 / 6) and accuracy == pytest.approx(1 / 3)
    assert digit_error_rate(["12"], [""])[0] == pytest.approx(1.0)
