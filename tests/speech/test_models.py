"""Speech models: every selectable architecture builds from shared blocks and gives the expected shapes."""

import dataclasses

import numpy as np
import pytest

from apps.speech import config as speech_config
from apps.speech.models import build_classifier, build_ctc_crnn


@pytest.mark.parametrize(("model", "cell"), [("cnn", "gru"), ("crnn", "gru"), ("crnn", "lstm")])
def test_classifiers_give_ten_probabilities(model, cell):
    config = dataclasses.replace(speech_config.digits_smoke(), model=model, rnn_cell=cell, rnn_units=4)
    classifier = build_classifier(config, (62, 40), np.zeros(40), np.ones(40))
    probabilities = classifier.predict(np.random.default_rng(0).normal(size=(3, 62, 40)), verbose=0)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    layer_names = [layer.name for layer in classifier.layers]
    assert ("rnn_bidirectional" in layer_names) == (model == "crnn")
    assert layer_names[1] == "normalize"


def test_ctc_model_gives_logits_per_step_with_time_pooled_by_four():
    config = speech_config.strings_smoke()
    model = build_ctc_crnn(dataclasses.replace(config, filters=(4, 8)), (311, 32), np.zeros(32), np.ones(32))
    assert model.output_shape == (None, 311 // 4, 11)
