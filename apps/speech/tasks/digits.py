"""Task 1, `digits`: one FSDD clip in, the spoken digit out (CNN or CRNN on log-mel features).

A classifier like vision's: `shared.classifier` compiles it, names its outputs (`probabilities`,
`class_ids`, `class_names`) and evaluates it; this module adds FSDD's data and a per-speaker table.
"""

import numpy as np

from apps.speech import augment
from apps.speech import data as speech_data
from apps.speech import negatives
from apps.speech import plots as speech_plots
from apps.speech.config import SAMPLE_RATE
from apps.speech.tasks.base import SpeechTask, load_and_split, padded_waveforms, records_of, subsample
from apps.speech.features import front_end, spec_augment
from apps.speech.models import build_classifier, build_embedding_classifier
from shared import classifier
from shared import data as shared_data
from shared.app import Data
from shared.metrics import accuracy_by_group

DIGITS = [str(digit) for digit in range(10)]
OPEN_SET = DIGITS + [negatives.UNKNOWN, negatives.SILENCE]


def with_negatives(clips, split, count, seed):
    """`(waveforms, labels, speakers)` of FSDD `clips` plus `count` generated negatives of `split` (labels 10 for
    `unknown`, 11 for `silence`; speaker "generated")."""
    waveforms, names = negatives.cached(split, count, seed, [clip.waveform for clip in clips]) if count else ([], [])
    return ([clip.waveform for clip in clips] + list(waveforms),
            [clip.digit for clip in clips] + [OPEN_SET.index(name) for name in names],
            [clip.speaker for clip in clips] + ["generated"] * len(names))


def open_set_head(probabilities, class_names, rejection_threshold):
    """`classifier.head`, then a digit less probable than `rejection_threshold` becomes `unknown`."""
    import tensorflow as tf

    outputs = classifier.head(probabilities, class_names)
    doubtful = (outputs["class_ids"] < len(DIGITS)) & (tf.reduce_max(probabilities, axis=-1) < rejection_threshold)
    class_ids = tf.where(doubtful, len(DIGITS), outputs["class_ids"])
    return {**outputs, "class_ids": class_ids, "class_names": tf.gather(tf.constant(list(class_names)), class_ids)}


def rejection_threshold(probabilities, labels, max_false_rejection):
    """The probability below which a predicted digit is rejected: a quantile of the top probabilities of the
    validation digits classed as digits, so that at most `max_false_rejection` of all validation digits are
    rejected (counting those already classed `unknown` or `silence`)."""
    digit = labels < len(DIGITS)
    top = probabilities[digit].max(axis=1)
    accepted = probabilities[digit].argmax(axis=1) < len(DIGITS)
    budget = max_false_rejection - (1 - accepted.mean()) if accepted.any() else 0.0
    return float(np.quantile(top[accepted], budget / accepted.mean())) if budget > 0 else 0.0


class DigitsTask(SpeechTask):
    name = "digits"

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        needs = [f"open_set={config.open_set}"] * config.open_set + [f"synthetic_digits={config.synthetic_digits}"] * (
            config.synthetic_digits > 0)
        if needs:
            negatives.check_espeak(", ".join(needs))
        if config.model == "embedding":
            from apps.speech import embedding

            embedding.check_available()  # the pinned weights, before any run opens
        return super().check_inputs(config, data_dir)

    def build_data(self, config, source):
        train, validation, test, source = load_and_split(config, source)
        train_limit, validation_limit, test_limit = classifier.limits(config)
        train, validation, test = (subsample(clips, limit, config.seed) for clips, limit in
                                   ((train, train_limit), (validation, validation_limit), (test, test_limit)))
        class_names = OPEN_SET if config.open_set else DIGITS
        counts = {"train": config.num_negatives if config.open_set else 0,
                  "validation": config.num_negatives // 4 if config.open_set else 0}
        counts["test"] = counts["validation"]
        (train_x, train_y, _), (validation_x, validation_y, _), (test_x, test_y, test_speakers) = (
            with_negatives(clips, split, counts[split], config.seed)
            for clips, split in ((train, "train"), (validation, "validation"), (test, "test")))
        if config.synthetic_digits:  # extra training speakers; validation and test stay FSDD's
            synthetic_x, synthetic_y = negatives.synthetic_digits(config.synthetic_digits, config.seed)
            train_x, train_y = train_x + list(synthetic_x), train_y + synthetic_y
        train_data, validation_data = speech_data.train_and_validation(
            (train_x, train_y), (validation_x, validation_y), config,
            batch_map_fn=shared_data.one_hot(len(class_names)),
        )
        info = {
            "class_names": class_names, "source": source, "split": config.split,
            "held_out_speaker": config.held_out_speaker if config.split == "speaker" else None,
            "speakers": sorted({clip.speaker for clip in train + validation + test}),
        }
        test_data = {**padded_waveforms(test_x), "labels": np.array(test_y), "speakers": test_speakers}
        records = records_of("fsdd", source, (("train", train), ("validation", validation), ("test", test)))
        return Data(train=train_data, validation=validation_data, test=test_data, records=records, info=info)

    # === Model ===

    def build_model(self, config, data):
        num_classes = len(data.info["class_names"])
        if config.model == "embedding":
            from apps.speech import embedding
            from apps.speech.models import embedding_pool

            arrays = embedding.weights()

            def parts():  # fresh layers for each graph: the statistics' model is not the trained one
                return (embedding.embedding_front_end(int(round(config.clip_seconds * SAMPLE_RATE)),
                                                      config.silence_threshold, arrays["melspectrogram"]),
                        embedding.embedding_network(arrays["embedding"]))

            # With frozen features, fit adapts the head's normalization in the pass it makes anyway (shared.frozen).
            mean, variance = (None, None) if self.frozen_features(config) else speech_data.feature_statistics(
                data.train, embedding_pool(*parts()))
            model = build_embedding_classifier(
                *parts(), mean, variance, num_classes=num_classes, dense_units=config.dense_units,
                activation=config.activation, dropout_rate=config.dropout_rate, l2=config.l2,
                waveform_augmentation=augment.layers_of(config)["waveform_augmentation"])
            return classifier.compile_classifier(model, config, data.train)
        mean, variance = speech_data.feature_statistics(
            data.train, augment.normalized_features(config, front_end(config)))
        model = build_classifier(
            front_end(config), spec_augment(config), mean, variance, **augment.layers_of(config),
            num_classes=num_classes,
            model=config.model,
            filters=config.filters, rnn_cell=config.rnn_cell, rnn_units=config.rnn_units,
            dense_units=config.dense_units, activation=config.activation, dropout_rate=config.dropout_rate,
            conv_dropout_rate=config.conv_dropout_rate, l2=config.l2)
        return classifier.compile_classifier(model, config, data.train)

    def frozen_features(self, config):
        """The embedding model's pooled embeddings are the same in every epoch unless waveforms are augmented:
        then only its head is fitted, on them computed once (`shared.frozen`)."""
        if config.model == "embedding" and augment.layers_of(config)["waveform_augmentation"] is None:
            return "pool"
        return None

    # === Serving and evaluation ===

    def after_fit(self, model, data, config):
        if not config.open_set:
            return {}
        batches = list(data.validation.as_numpy_iterator())
        probabilities = np.concatenate([model.predict(waveforms, verbose=0) for waveforms, _ in batches])
        labels = np.concatenate([targets.argmax(axis=1) for _, targets in batches])
        return {"rejection_threshold": rejection_threshold(probabilities, labels, config.max_false_rejection)}

    def serve_waveforms(self, model, config, info):
        def serve(waveforms):
            probabilities = model(waveforms, training=False)
            if "rejection_threshold" in info:
                return open_set_head(probabilities, info["class_names"], info["rejection_threshold"])
            return classifier.head(probabilities, info["class_names"])

        return serve

    def evaluate(self, serving, data, config, batch_size=64):
        test = data.test
        class_names = data.info["class_names"]
        report, outputs = classifier.evaluate(serving, {"waveforms": test["waveforms"]}, test["labels"], class_names,
                                              batch_size)
        if len(class_names) > len(DIGITS):  # open set: how often digits are rejected, and negatives are not
            digit, rejected = test["labels"] < len(DIGITS), outputs["class_ids"] >= len(DIGITS)
            report.metrics["test_false_rejection_rate"] = float(rejected[digit].mean())
            report.metrics["test_negative_rejection_rate"] = float(rejected[~digit].mean())
            report.metrics["test_digit_accuracy"] = float((outputs["class_ids"] == test["labels"])[digit].mean())
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
