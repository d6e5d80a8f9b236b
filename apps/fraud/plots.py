"""The fraud app's figures: PR and ROC curves, score histograms by class, CP@k per test day."""

import numpy as np
from sklearn import metrics as sklearn_metrics

from apps.fraud import metrics
from shared.plots import plt


def precision_recall(labels, scores, threshold):
    precision, recall, thresholds = sklearn_metrics.precision_recall_curve(labels, scores)
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot(recall, precision, label=f"AP {metrics.average_precision(labels, scores):.3f}")
    at = np.searchsorted(thresholds, threshold, side="left")  # thresholds ascend: the first at or above it
    if at < len(thresholds):
        axis.plot(recall[at], precision[at], "o", color="tab:red", label=f"threshold {threshold:.3g}")
    axis.axhline(np.mean(labels), color="gray", linestyle="--", label="random")
    axis.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)", xlim=(0, 1), ylim=(0, 1.02))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def roc(labels, scores):
    false_rate, true_rate, _thresholds = sklearn_metrics.roc_curve(labels, scores)
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot(false_rate, true_rate, label=f"AUC {metrics.auc_roc(labels, scores):.3f}")
    axis.plot([0, 1], [0, 1], "--", color="gray", label="random")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def score_histograms(labels, scores, threshold):
    labels = np.asarray(labels).astype(bool)
    figure, axis = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(scores, bins=50)
    axis.hist(scores[~labels], bins=bins, alpha=0.6, density=True, label=f"genuine ({(~labels).sum()})")
    axis.hist(scores[labels], bins=bins, alpha=0.6, density=True, label=f"fraud ({labels.sum()})")
    axis.axvline(threshold, color="tab:red", linestyle="--", label="threshold")
    axis.set(xlabel="fraud score", ylabel="density", title="Scores by class (test)", yscale="log")
    axis.legend()
    figure.tight_layout()
    return figure


def per_day(card_precision, top_k):
    figure, axis = plt.subplots(figsize=(6, 3.5))
    days = list(card_precision)
    axis.bar(range(len(days)), list(card_precision.values()))
    axis.set_xticks(range(len(days)), days, rotation=45, ha="right")
    axis.set(ylabel=f"CP@{top_k}", title=f"Card precision top-{top_k} per test day", ylim=(0, 1))
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return figure
