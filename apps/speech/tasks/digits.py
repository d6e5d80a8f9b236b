"""Task 1, `digits`: one FSDD clip in, the spoken digit out (CNN or CRNN on log-mel features).

A classifier like vision's: `shared.classifier` compiles it, names its outputs (`probabilities`,
`class_ids`, `class_names`) and evaluates it; this module adds FSDD's data and a per-speaker table.
"""

import numpy as np

from apps.speech import data as speech_data
from apps.speech import plots as speech_plots
from apps.speech.tasks.base import SpeechTask, load_and_split, padded_waveforms, records_of, subsample
from apps.speech.features import front_end, spec_augment
from apps.speech.models import build_classifier
from shared import classifier
from shared import data as shared_data
from shared.app import Data
from shared.metrics import accuracy_by_group

DIGITS = [str(digit) for digit in range(10)]


class DigitsTask(SpeechTask):
    name = "digits"

    # === Inputs ===

    def build_data(self, config, source):
        train, validation, test, source = load_and_split(config, source)
        train_limit, validation_limit, test_limit = classifier.limits(config)
        train, validation, test = (subsample(clips, limit, config.seed) for clips, limit in
                                   ((train, train_limit), (validation, validation_limit), (test, test_limit)))
        train_data, validation_data = speech_data.train_and_validation(
            ([clip.waveform for clip in train], [clip.digit for clip in train]),
            ([clip.waveform for clip in validation], [clip.digit for clip in validation]),
            config, batch_map_fn=shared_data.one_hot(len(DIGITS)),
        )
        info = {
            "class_names": DIGITS, "source": source, "split": config.split,
            "held_out_speaker": config.held_out_speaker if config.split == "speaker" else None,
            "speakers": sorted({clip.speaker for clip in train + validation + test}),
        }
        test_data = {**padded_waveforms([clip.waveform for clip in test]),
                     "labels": np.array([clip.digit for clip in test]), "speakers": [clip.speaker for clip in test]}
        records = records_of("fsdd", source, (("train", train), ("validation", validation), ("test", test)))
        return Data(train=train_data, validation=validation_data, test=test_data, records=records, info=info)

    # === Model ===

    def build_model(self, config, data):
        mean, variance = speech_data.feature_statistics(data.train, front_end(config))
        model = build_classifier(
            front_end(config), spec_augment(config), mean, variance, num_classes=len(DIGITS), model=config.model,
            filters=config.filters, rnn_cell=config.rnn_cell, rnn_units=config.rnn_units,
            dense_units=config.dense_units, activation=config.activation, dropout_rate=config.dropout_rate,
            conv_dropout_rate=config.conv_dropout_rate, l2=config.l2)
        return classifier.compile_classifier(model, config, data.train)

    # === Serving and evaluation ===

    def serve_waveforms(self, model, config, info):
        def serve(waveforms):
            return classifier.head(model(waveforms, training=False), DIGITS)

        return serve

    def evaluate(self, serving, data, config, batch_size=64):
        test = data.test
        report, outputs = classifier.evaluate(serving, {"waveforms": test["waveforms"]}, test["labels"], DIGITS,
                                              batch_size)
        report.tables["per_speaker_accuracy.json"] = accuracy_by_group(
            test["labels"], outputs["class_ids"], test["speakers"], "speaker")
        shown = [int(np.argmax(test["labels"] == digit)) for digit in range(10) if (test["labels"] == digit).any()]
        spectrograms = front_end(config)(test["waveforms"][shown]).numpy()
        report.figures["example_spectrograms.png"] = speech_plots.spectrogram_grid(
            spectrograms, [f"{test['speakers'][i]}: {test['labels'][i]} (predicted {outputs['class_ids'][i]})"
                           for i in shown],
            columns=5, frame_seconds=config.frame_step / 8000,
        )
        return report
