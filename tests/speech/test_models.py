"""Speech models: every selectable architecture takes raw waveforms, holds its front end, and gives the
expected shapes."""

import dataclasses

import numpy as np
import pytest

from apps.speech import config as speech_config
from apps.speech.features import front_end, spec_augment
from apps.speech.models import build_classifier, build_ctc_crnn


def waveforms(batch, samples, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal((batch, samples))).astype(np.float32)


@pytest.mark.parametrize(("model", "cell"), [("cnn", "gru"), ("crnn", "gru"), ("crnn", "lstm")])
def test_classifiers_take_waveforms_and_give_ten_probabilities(model, cell):
    config = dataclasses.replace(speech_config.digits_smoke(), model=model, rnn_cell=cell, rnn_units=4)
    classifier = build_classifier(front_end(config), spec_augment(config), np.zeros(40), np.ones(40), model=model,
                                  filters=config.filters, rnn_cell=cell, rnn_units=4, dense_units=config.dense_units)
    assert classifier.input.dtype == "float32" and tuple(classifier.input.shape) == (None, None)
    probabilities = classifier.predict(waveforms(3, 6000), verbose=0)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    layer_names = [layer.name for layer in classifier.layers]
    assert ("rnn_bidirectional" in layer_names) == (model == "crnn")
    assert layer_names[1:4] == ["log_mel_front_end", "spec_augment", "normalize"]


def test_ctc_model_gives_logits_per_step_with_time_pooled_by_four():
    config = dataclasses.replace(speech_config.strings_smoke(), filters=(4, 8))
    model = build_ctc_crnn(front_end(config), spec_augment(config), np.zeros(32), np.ones(32), filters=(4, 8),
                           rnn_units=config.rnn_units, rnn_layers=config.rnn_layers)
    assert model.output_shape == (None, front_end(config).num_frames // 4, 11)
    assert model.predict(waveforms(2, 9000), verbose=0).shape == (2, front_end(config).num_frames // 4, 11)
