"""The recommender's evaluation figures (matplotlib, headless through `shared.plots`)."""

import numpy as np

from shared.plots import plt


def error_histogram(errors, title="Prediction error on the test ratings"):
    """Histogram of predicted minus true rating."""
    figure, axis = plt.subplots(figsize=(6, 3.8))
    axis.hist(errors, bins=np.linspace(-4, 4, 65), color="tab:blue", alpha=0.8)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_xlabel("predicted - true rating")
    axis.set_ylabel("test ratings")
    axis.set_title(f"{title} (RMSE {np.sqrt(np.mean(np.square(errors))):.4f})")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def predicted_vs_true(true, predicted, rating_values):
    """The distribution of predictions for each true rating (box plots), with the diagonal."""
    figure, axis = plt.subplots(figsize=(6, 4.2))
    groups = [predicted[true == value] for value in rating_values]
    kept = [(value, group) for value, group in zip(rating_values, groups) if len(group)]
    axis.boxplot([group for _value, group in kept], positions=[value for value, _group in kept],
                 widths=0.3 if len(rating_values) <= 5 else 0.2, showfliers=False)
    axis.plot([rating_values[0], rating_values[-1]], [rating_values[0], rating_values[-1]], "--", color="tab:red",
              label="predicted = true")
    for value, group in kept:
        axis.annotate(f"n={len(group)}", (value, rating_values[0] - 0.35), ha="center", fontsize=7)
    axis.set_xticks(rating_values, [f"{value:g}" for value in rating_values])
    axis.set_ylim(rating_values[0] - 0.5, rating_values[-1] + 0.3)
    axis.set_xlabel("true rating")
    axis.set_ylabel("predicted rating")
    axis.set_title("Predicted vs true rating (test)")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left")
    figure.tight_layout()
    return figure


def ranking_curves(curves):
    """Recall@k and NDCG@k for k = 1..K, one line per model: `{model name: {"recall": [...], "ndcg": [...]}}`."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, metric in zip(axes, ("recall", "ndcg")):
        for name, values in curves.items():
            depths = np.arange(1, len(values[metric]) + 1)
            axis.plot(depths, values[metric], label=name)
        axis.set_xlabel("k")
        axis.set_title(f"{'Recall' if metric == 'recall' else 'NDCG'}@k (test)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure
