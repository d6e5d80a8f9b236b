"""The text classifiers' evaluation figures (matplotlib, headless through `shared.plots`)."""

import numpy as np

from shared.plots import plt


def precision_recall_curve(labels, scores):
    """`(precision, recall, thresholds)` of `scores` (the positive class's probability) against 0/1 `labels`.

    One point per distinct score, highest first; recall starts at 0 with precision 1, as scikit-learn draws it.
    """
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_each_score]
    predicted_positives = last_of_each_score + 1
    precision = np.r_[1.0, true_positives / predicted_positives]
    recall = np.r_[0.0, true_positives / max(labels.sum(), 1)]
    return precision, recall, scores[last_of_each_score]


def average_precision(precision, recall):
    """The area under the step PR curve: sum of (recall step) x precision at that step."""
    return float(np.sum(np.diff(recall) * precision[1:]))


def precision_recall_figure(precision, recall, positive_name, base_rate):
    figure, axis = plt.subplots(figsize=(5.5, 4.2))
    axis.step(recall, precision, where="post", color="tab:blue",
              label=f"model (AP {average_precision(precision, recall):.4f})")
    axis.axhline(base_rate, linestyle="--", color="tab:gray", label=f"chance ({base_rate:.3f})")
    axis.set_xlabel(f"recall ({positive_name})")
    axis.set_ylabel(f"precision ({positive_name})")
    axis.set_xlim(0, 1.01)
    axis.set_ylim(0, 1.02)
    axis.set_title(f"Precision-recall, positive class {positive_name!r} (test)")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    figure.tight_layout()
    return figure
