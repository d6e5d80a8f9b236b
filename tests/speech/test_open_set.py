"""The open set: generated negatives (apps/speech/negatives.py) and the digits task with `unknown` and `silence`
classes, trained for real on a small slice, exported, and asked about a word it never heard."""

import numpy as np
import pytest

from apps.speech import negatives


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLSUITE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_word_lists_are_disjoint_and_hold_no_digit():
    train, validation, test = (set(negatives.WORDS[split]) for split in ("train", "validation", "test"))
    assert not train & validation and not train & test and not validation & test
    digits = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh"}
    assert not (train | validation | test) & digits


def test_negatives_are_deterministic_8khz_and_cached(cache):
    digits = [np.sin(np.arange(3000) / 7.0).astype(np.float32)]
    first, names = negatives.cached("test", 9, 3, digits)
    assert names.count(negatives.SILENCE) == 3 and names.count(negatives.UNKNOWN) == 6
    assert all(waveform.dtype == np.float32 and 400 < len(waveform) < 3 * 8000 for waveform in first)
    assert list(cache.glob("speech_negatives/*/test.npz"))
    again, names_again = negatives.cached("test", 9, 3, digits)  # read back from the cache
    made, names_made = negatives.make("test", 9, 3, digits)  # made again from the seed
    assert names == names_again == names_made
    for waveform, cached, remade in zip(first, again, made):
        np.testing.assert_array_equal(waveform, cached)
        np.testing.assert_allclose(waveform, remade, atol=1e-6)
    other, _ = negatives.make("test", 9, 4, digits)
    assert any(len(a) != len(b) or not np.allclose(a, b) for a, b in zip(first, other))


def test_espeak_words_are_speech_length_at_8khz():
    waveform = negatives.synthesize("window", "en-gb", 160, 50)
    assert 0.2 * 8000 < len(waveform) < 1.5 * 8000 and 0.05 < np.abs(waveform).max() <= 1.0


@pytest.mark.parametrize("kind", negatives.NOISES)
def test_noise_kinds(kind):
    waveform = negatives.noise(kind, 8000, np.random.default_rng(0))
    assert waveform.shape == (8000,) and 0 < np.abs(waveform).max() < 0.5


def test_open_set_digits_reject_a_synthesised_word_through_the_export(tracking_uri, data_root, tmp_path, cache):
    """A small real training with `open_set`: the export answers 12 classes, the run reports both rejection rates,
    and words of the held-out test list, in voices the model trained on but never with these words, come back
    rejected (`unknown` or `silence`; the smoke model is weak, so most of them, not all; the benchmark
    preset's rates are in the README)."""
    from pipelines.train import train
    from shared import export

    summary = train("speech", task="digits", preset="smoke", data_dir=str(data_root), tracking_uri=tracking_uri,
                    export_root=str(tmp_path / "exports"), overrides=("open_set=true", "num_negatives=300", "epochs=6"))
    metrics = summary["metrics"]
    assert 0 <= metrics["test_false_rejection_rate"] <= 0.2 and metrics["test_negative_rejection_rate"] >= 0.5
    serve = export.load_serving(summary["export_dir"])
    words = [negatives.synthesize(word, voice, 170, 50) for word, voice in
             zip(negatives.WORDS["test"][:12], negatives.VOICES)]
    batch = np.zeros((len(words), max(len(word) for word in words)), np.float32)
    for row, word in enumerate(words):
        batch[row, :len(word)] = word
    outputs = serve(waveforms=batch)
    assert outputs["probabilities"].shape == (12, 12)
    names = [name.decode() for name in outputs["class_names"]]
    assert sum(name in (negatives.UNKNOWN, negatives.SILENCE) for name in names) >= 7, (names, metrics)
    silence = serve(waveforms=np.stack([negatives.noise(kind, 8000, np.random.default_rng(1))
                                        for kind in negatives.NOISES]))
    assert all(name.decode() in (negatives.SILENCE, negatives.UNKNOWN) for name in silence["class_names"])


def test_open_set_without_espeak_stops_before_any_work(data_root, tmp_path, monkeypatch):
    import dataclasses

    from apps.speech import config as speech_config
    from apps.speech.tasks.digits import DigitsTask
    from shared.errors import DataError

    monkeypatch.setenv("PATH", str(tmp_path))
    config = dataclasses.replace(speech_config.digits_smoke(), open_set=True)
    with pytest.raises(DataError, match=r"espeak-ng, which is not installed\. Received: open_set=True\. Expected "
                                        r"espeak-ng on the PATH\. Fix: apt-get install espeak-ng"):
        DigitsTask().check_inputs(config, str(data_root))
    monkeypatch.undo()
    DigitsTask().check_inputs(config, str(data_root))  # with espeak-ng on the PATH: accepted
