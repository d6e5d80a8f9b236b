"""Task 2, `digit_strings`: an utterance of 1-7 digits in, the digit string out (CRNN + CTC)."""

import keras
import numpy as np
import tensorflow as tf

from apps.speech import augment
from apps.speech import data as speech_data
from apps.speech import plots as speech_plots
from apps.speech.tasks.base import SpeechTask, load_and_split, padded_waveforms
from apps.speech.features import front_end, spec_augment
from apps.speech.models import build_ctc_crnn
from apps.speech.utterances import label_matrix, make_utterances
from shared import data as shared_data
from shared.app import Data, DatasetRecord, Report
from shared.optimizers import build_optimizer

# Class index -> text: 0 is the CTC blank (and -1 the decoder's padding), d + 1 is digit d.
INDEX_TO_TEXT = ["", *[str(digit) for digit in range(10)]]


def digit_error_rate(references, hypotheses):
    """Total edit distance / total reference length (`tf.edit_distance` on digit sequences), and exact matches."""
    references = [reference.decode() if isinstance(reference, bytes) else reference for reference in references]
    hypotheses = [hypothesis.decode() if isinstance(hypothesis, bytes) else hypothesis for hypothesis in hypotheses]
    truth = tf.strings.bytes_split(tf.constant(references)).to_sparse()
    guess = tf.strings.bytes_split(tf.constant(hypotheses, dtype=tf.string)).to_sparse()
    distances = tf.edit_distance(guess, truth, normalize=False).numpy()
    lengths = np.array([len(reference) for reference in references])
    matches = np.array([reference == hypothesis for reference, hypothesis in zip(references, hypotheses)])
    return float(distances.sum() / lengths.sum()), float(matches.mean()), distances, lengths


class DigitStringsTask(SpeechTask):
    name = "digit_strings"
    headline = ("test_digit_error_rate", "min")  # the beam search's, on the test utterances

    # === Inputs ===

    def build_data(self, config, source):
        train_clips, validation_clips, test_clips, source = load_and_split(config, source)
        # Different seeds per split; the test utterances depend only on the seed and the test clips.
        train = make_utterances(train_clips, config.num_train_utterances, config, config.seed)
        validation = make_utterances(validation_clips, config.num_validation_utterances, config, config.seed + 1)
        test = make_utterances(test_clips, config.num_test_utterances, config, config.seed + 2)
        train_data, validation_data = speech_data.train_and_validation(
            ([utterance.waveform for utterance in train], label_matrix(train, config.max_digits)),
            ([utterance.waveform for utterance in validation], label_matrix(validation, config.max_digits)),
            config,
        )
        info = {"source": source, "split": config.split,
                "held_out_speaker": config.held_out_speaker if config.split == "speaker" else None,
                "max_digits": config.max_digits, "beam_width": config.beam_width}
        test_data = {**padded_waveforms([utterance.waveform for utterance in test]),
                     "digits": [utterance.digits for utterance in test],
                     "speakers": [utterance.speaker for utterance in test]}
        name = "fsdd-digit-strings"
        records = [
            DatasetRecord(name, source, split, len(utterances), shared_data.fingerprint_arrays(
                *[utterance.waveform for utterance in utterances]))
            for split, utterances in (("train", train), ("validation", validation), ("test", test))
        ]
        return Data(train=train_data, validation=validation_data, test=test_data, records=records, info=info)

    # === Model ===

    def build_model(self, config, data):
        mean, variance = speech_data.feature_statistics(
            data.train, augment.normalized_features(config, front_end(config)))
        model = build_ctc_crnn(
            front_end(config), spec_augment(config), mean, variance, **augment.layers_of(config),
            filters=config.filters, rnn_cell=config.rnn_cell,
            rnn_units=config.rnn_units, rnn_layers=config.rnn_layers, activation=config.activation,
            dropout_rate=config.dropout_rate, conv_dropout_rate=config.conv_dropout_rate, l2=config.l2)
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)), loss=keras.losses.CTC())
        return model

    # === Serving and evaluation ===

    def serve_waveforms(self, model, config, info):
        index_to_text = tf.constant(INDEX_TO_TEXT)
        beam_width = info["beam_width"]

        def to_text(decoded):
            return tf.strings.reduce_join(tf.gather(index_to_text, tf.maximum(decoded[0], 0)), axis=-1)

        def serve(waveforms):
            log_probabilities = tf.nn.log_softmax(model(waveforms, training=False), axis=-1)
            shape = tf.shape(log_probabilities)
            lengths = tf.fill([shape[0]], shape[1])
            beam, _ = keras.ops.ctc_decode(log_probabilities, lengths, strategy="beam_search", beam_width=beam_width)
            greedy, _ = keras.ops.ctc_decode(log_probabilities, lengths, strategy="greedy")
            return {"digits": to_text(beam), "digits_greedy": to_text(greedy)}

        return serve

    def evaluate(self, serving, data, config):
        test = data.test
        outputs = serving.batched(64, waveforms=test["waveforms"])
        metrics, columns = {}, {"reference": test["digits"]}
        for decoder, key in (("beam_search", "digits"), ("greedy", "digits_greedy")):
            hypotheses = [value.decode() for value in outputs[key]]
            error_rate, accuracy, distances, lengths = digit_error_rate(test["digits"], hypotheses)
            suffix = "" if decoder == "beam_search" else "_greedy"
            metrics[f"test_digit_error_rate{suffix}"] = error_rate
            metrics[f"test_string_accuracy{suffix}"] = accuracy
            columns[decoder] = hypotheses
            if decoder == "beam_search":
                by_length = {size: (distances[lengths == size].sum() / (size * (lengths == size).sum()))
                             for size in sorted(set(lengths.tolist()))}
        shown = list(range(min(20, len(test["digits"]))))
        tables = {
            "test_examples.json": {name: [values[i] for i in shown] for name, values in columns.items()},
            "digit_error_rate_by_length.json": {"digits": list(by_length),
                                                "digit_error_rate": [round(float(v), 4) for v in by_length.values()],
                                                "utterances": [int((lengths == size).sum()) for size in by_length]},
        }
        examples = shown[:4]
        spectrograms = front_end(config)(test["waveforms"][examples]).numpy()
        figure = speech_plots.spectrogram_grid(
            spectrograms, [f"{test['digits'][i]} -> {columns['beam_search'][i] or '(empty)'}" for i in examples],
            columns=2, frame_seconds=config.frame_step / 8000,
        )
        return Report(metrics=metrics, figures={"example_spectrograms.png": figure}, tables=tables)
