"""Task 1, `digits`: one FSDD clip in, the spoken digit out (CNN or CRNN on log-mel features)."""

import keras
import numpy as np
import tensorflow as tf

from apps.speech import data as speech_data
from apps.speech import plots as speech_plots
from apps.speech.app import SpeechTask, front_end_info, records_of, split_clips, subsample
from apps.speech.features import LogMelFrontEnd, front_end
from apps.speech.models import build_classifier
from shared.app import Data
from shared.data import steps_per_epoch
from shared.metrics import classification_report
from shared.optimizers import build_optimizer

DIGITS = [str(digit) for digit in range(10)]


class DigitsTask(SpeechTask):
    name = "digits"

    # === Inputs ===

    def build_data(self, config, source):
        train, validation, test, source = split_clips(config, source)
        train = subsample(train, config.max_train_examples, config.seed)
        validation = subsample(validation, config.max_train_examples and max(1, config.max_train_examples // 8),
                               config.seed)
        test = subsample(test, config.max_test_examples, config.seed)
        extractor = front_end(config)

        def to_one_hot(features, digits):
            return features, tf.one_hot(digits, len(DIGITS))

        train_data, validation_data, mean, variance = speech_data.train_and_validation(
            [clip.waveform for clip in train], [clip.digit for clip in train],
            [clip.waveform for clip in validation], [clip.digit for clip in validation],
            config, extractor, target_map=to_one_hot,
        )
        info = {
            "class_names": DIGITS, "source": source, "split": config.split,
            "held_out_speaker": config.held_out_speaker if config.split == "speaker" else None,
            **front_end_info(extractor, mean, variance),
            "speakers": sorted({clip.speaker for clip in train + validation + test}),
        }
        test_data = {"waveforms": [clip.waveform for clip in test], "labels": np.array([clip.digit for clip in test]),
                     "speakers": [clip.speaker for clip in test]}
        records = records_of("fsdd", source, (("train", train), ("validation", validation), ("test", test)))
        return Data(train=train_data, validation=validation_data, test=test_data, records=records, info=info)

    # === Model ===

    def build_model(self, config, data):
        info = data.info
        model = build_classifier(config, tuple(info["feature_shape"]), info["feature_mean"], info["feature_variance"],
                                 num_classes=len(DIGITS))
        model.compile(
            optimizer=build_optimizer(config, steps_per_epoch(data.train)),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )
        return model

    # === Serving and evaluation ===

    def serve_waveforms(self, model, config, info):
        extractor = LogMelFrontEnd(**info["front_end"])

        def serve(waveforms):
            probabilities = model(extractor(waveforms), training=False)
            return {"probabilities": probabilities,
                    "digits": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

        return serve

    def evaluate(self, serving, data, config):
        test = data.test
        probabilities = speech_data.predict_in_batches(serving, test["waveforms"])["probabilities"]
        report = classification_report(test["labels"], probabilities, DIGITS)
        predictions = probabilities.argmax(-1)
        correct = predictions == test["labels"]
        report.tables["per_digit_accuracy.json"] = {
            "digit": DIGITS,
            "accuracy": [round(float(correct[test["labels"] == digit].mean()), 4) if (test["labels"] == digit).any()
                         else None for digit in range(10)],
            "clips": [int((test["labels"] == digit).sum()) for digit in range(10)],
        }
        speakers = np.array(test["speakers"])
        names = sorted(set(test["speakers"]))
        report.tables["per_speaker_accuracy.json"] = {
            "speaker": names,
            "accuracy": [round(float(correct[speakers == name].mean()), 4) for name in names],
            "clips": [int((speakers == name).sum()) for name in names],
        }
        shown = [int(np.argmax(test["labels"] == digit)) for digit in range(10) if (test["labels"] == digit).any()]
        spectrograms = front_end(config)(speech_data.pad_batch([test["waveforms"][i] for i in shown])).numpy()
        report.figures["example_spectrograms.png"] = speech_plots.spectrogram_grid(
            spectrograms, [f"{test['speakers'][i]}: {test['labels'][i]} (predicted {predictions[i]})" for i in shown],
            columns=5, frame_seconds=config.frame_step / 8000,
        )
        return report
