"""What the two text classifiers (`text_classification`, `transfer`) share: inputs, split, serving, evaluation.

A subclass builds the model, which takes raw strings: its tokenizer is its first layer (a WordPiece
tokenizer over a vocabulary learned from the training split, `text_info`, or BERT's preprocessor), so
the model trained, the one MLflow logs and the one exported are one object. Everything else is here:
the delimited file is read and checked in `check_inputs` (before a run opens), split stratified,
batched as strings in tf.data, and served by calling the model on the request's strings.
`shared.classifier` names the outputs (`probabilities`, `class_ids`, `class_names`).

Evaluation adds to `shared.classifier.evaluate` (accuracy, loss, macro-F1, confusion matrix, per-class
table): per-class precision/recall/F1 as metrics, Matthews' correlation coefficient, for two classes
the precision-recall curve and average precision, and the worst-misclassified test messages.
"""

import re

import numpy as np
import tensorflow as tf

from apps.nlp import data as nlp_data
from apps.nlp import plots as nlp_plots
from shared import classifier
from shared.app import Data, DataSource, Endpoint, Task

# Serving must answer these, never fail (the export is verified on them).
AWKWARD_TEXTS = ("", "   ", "win " * 2000, "¿Dónde está la estación? Ünïcödé, 日本語のテキスト, emoji 😀📱",
                 "\u200b\x00\t\n")
BYTES_PER_TOKEN = 16  # served strings are cut to this many bytes per token of sequence_length before tokenizing


class TextClassifierTask(Task):
    app = "nlp"

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        folder, paths = nlp_data.find_files(config, data_dir)
        nlp_data.load(config, paths)  # a few MB at most: every row is checked before a run opens
        return DataSource.files(folder)

    def build_data(self, config, source):
        split = nlp_data.split(config, nlp_data.data_files(source.path, config.file_name), classifier.limits(config))
        for name, count in split.rows_per_file.items():
            print(f"dlsuite: {count} rows from {name}", flush=True)
        num_classes = len(split.class_names)
        info = self.text_info(config, split)
        train = nlp_data.dataset(split.train, num_classes, config.batch_size, shuffle=True, seed=config.seed)
        validation = nlp_data.dataset(split.validation, num_classes, config.batch_size) \
            if len(split.validation) else None
        info.update({
            "class_names": split.class_names, "duplicates_across_splits": split.duplicates,
            "rows_per_file": split.rows_per_file,
            "class_counts": {name: [int((part.labels == number).sum()) for part in
                                    (split.train, split.validation, split.test)]
                             for number, name in enumerate(split.class_names)},
        })
        test = {"text": split.test.texts, "labels": split.test.labels, "lines": split.test.lines,
                "files": split.test.files}
        return Data(train=train, validation=validation, test=test, records=nlp_data.records(split, source.uri),
                    info=info)

    def text_info(self, config, split):
        """What building the model's tokenizer needs, learned from the split (into `Data.info`), e.g. a vocabulary."""
        return {}

    def class_weight(self, config, data):
        if config.class_weighting == "none":
            return None
        counts = [train for train, _validation, _test in data.info["class_counts"].values()]
        total = sum(counts)
        return {number: total / (len(counts) * count) for number, count in enumerate(counts) if count}

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        class_names = info["class_names"]

        def serve(text):  # the model tokenizes: strings in, cut first so a huge one costs no more than a long one
            text = tf.strings.substr(text, 0, BYTES_PER_TOKEN * config.sequence_length)
            return classifier.head(model(text, training=False), class_names)

        return {"serving_default": Endpoint(serve, [tf.TensorSpec([None], tf.string, name="text")])}

    def example_inputs(self, data):
        texts = [*data.test["text"][:4], *AWKWARD_TEXTS]
        return {"text": np.array(texts, dtype=object)}

    def evaluate(self, serving, data, config, batch_size=256):
        class_names, labels, texts = data.info["class_names"], data.test["labels"], data.test["text"]
        report, outputs = classifier.evaluate(serving, {"text": texts}, labels, class_names, batch_size)
        table = report.tables["per_class_metrics.json"]
        for key in ("precision", "recall", "f1"):
            for name, value in zip(class_names, table[key]):
                report.metrics[f"test_{key}_{metric_name(name)}"] = float(value)
        report.metrics["test_mcc"] = matthews_correlation(labels, outputs["class_ids"], len(class_names))
        if len(class_names) == 2:
            precision, recall, average_precision = nlp_plots.precision_recall(labels == 1,
                                                                              outputs["probabilities"][:, 1])
            report.metrics["test_average_precision"] = average_precision
            report.figures["precision_recall.png"] = nlp_plots.precision_recall_figure(
                precision, recall, average_precision, class_names[1], float(np.mean(labels == 1)))
        report.tables["worst_misclassified.json"] = worst_misclassified(
            texts, labels, outputs["probabilities"], class_names, data.test["lines"], config.worst_examples,
            files=data.test["files"])
        return report


def metric_name(class_name):
    """A class name usable in an MLflow metric key (letters, digits, `_ - .`)."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", str(class_name)).strip("_") or "class"


def matthews_correlation(labels, predictions, num_classes):
    """Matthews' correlation coefficient (multi-class, Gorodkin's form); 0 when a side is constant."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(matrix, (np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)), 1)
    total, correct = matrix.sum(), np.trace(matrix)
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    numerator = correct * total - true_counts @ predicted_counts
    denominator = np.sqrt((total ** 2 - predicted_counts @ predicted_counts) * (total ** 2 - true_counts @ true_counts))
    return float(numerator / denominator) if denominator else 0.0


def worst_misclassified(texts, labels, probabilities, class_names, lines, count, files=None):
    """The `count` wrong test messages the model was surest about: file (when `files` is given), line, true and
    predicted class, confidence."""
    predictions = probabilities.argmax(axis=-1)
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]], kind="stable")][:count]
    return {
        **({"file": [str(files[index]) for index in wrong]} if files is not None else {}),
        "line": [int(lines[index]) for index in wrong],
        "true": [class_names[labels[index]] for index in wrong],
        "predicted": [class_names[predictions[index]] for index in wrong],
        "confidence": [round(float(probabilities[index, predictions[index]]), 4) for index in wrong],
        "text": [str(texts[index])[:300] for index in wrong],
    }
