"""The text classifiers' evaluation figures (matplotlib, headless through `shared.plots`).

The precision-recall curve and average precision are scikit-learn's (`sklearn.metrics`): AP is the step-wise
sum over thresholds of (recall step) x precision, no interpolation.
"""

from sklearn import metrics

from shared.plots import plt


def precision_recall(labels, scores):
    """`(precision, recall, average_precision)` of `scores` (the positive class's probability) against 0/1 `labels`:
    one point per distinct score, from recall 1 down to recall 0 at precision 1, as scikit-learn returns them."""
    precision, recall, _thresholds = metrics.precision_recall_curve(labels, scores)
    return precision, recall, float(metrics.average_precision_score(labels, scores))


def precision_recall_figure(precision, recall, average_precision, positive_name, base_rate):
    figure, axis = plt.subplots(figsize=(5.5, 4.2))
    axis.step(recall, precision, where="post", color="tab:blue", label=f"model (AP {average_precision:.4f})")
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
