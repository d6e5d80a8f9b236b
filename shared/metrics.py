"""Classification metrics computed from predictions (numpy), shared by the classifier apps."""

import numpy as np

from shared import plots
from shared.app import Report


def classification_report(labels, probabilities, class_names, prefix="test_"):
    """Accuracy, cross-entropy, confusion matrix (PNG) and per-class precision/recall/F1 (table)."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predictions = probabilities.argmax(axis=-1)
    num_classes = len(class_names)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    true_positives = np.diag(matrix).astype(np.float64)
    precision = np.divide(true_positives, matrix.sum(axis=0), out=np.zeros(num_classes), where=matrix.sum(axis=0) > 0)
    recall = np.divide(true_positives, matrix.sum(axis=1), out=np.zeros(num_classes), where=matrix.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes), where=(precision + recall) > 0)
    picked = probabilities[np.arange(len(labels)), labels]
    metrics = {
        f"{prefix}accuracy": float((predictions == labels).mean()),
        f"{prefix}loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        f"{prefix}macro_f1": float(f1.mean()),
        f"{prefix}errors": float((predictions != labels).sum()),
    }
    table = {
        "class": list(class_names),
        "precision": [round(float(value), 4) for value in precision],
        "recall": [round(float(value), 4) for value in recall],
        "f1": [round(float(value), 4) for value in f1],
        "support": [int(value) for value in matrix.sum(axis=1)],
    }
    return Report(
        metrics=metrics,
        figures={"confusion_matrix.png": plots.confusion_matrix(matrix, class_names)},
        tables={"per_class_metrics.json": table},
    )


def accuracy_by_group(labels, predictions, groups, column="group"):
    """A table of accuracy per group (speaker, language, merchant, ...): `{column, accuracy, examples}`."""
    labels, predictions, groups = np.asarray(labels), np.asarray(predictions), np.asarray(groups)
    names = sorted(set(groups.tolist()))
    correct = labels.astype(int) == predictions.astype(int)
    return {
        column: names,
        "accuracy": [round(float(correct[groups == name].mean()), 4) for name in names],
        "examples": [int((groups == name).sum()) for name in names],
    }
