"""The return curve: evaluation return (mean ± std) against environment steps, from the run's MLflow history."""

import numpy as np

from shared.plots import plt


def return_curve(history, solved_threshold=None):
    steps, means = (np.asarray(values) for values in zip(*history["eval_return_mean"]))
    stds = np.asarray([value for _step, value in history.get("eval_return_std", [])] or np.zeros_like(means))
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(steps, means, marker="o", markersize=3, label="greedy evaluation return")
    if len(stds) == len(means):
        axis.fill_between(steps, means - stds, means + stds, alpha=0.2)
    if history.get("train_episode_return_mean"):
        train_steps, train_means = zip(*history["train_episode_return_mean"])
        axis.plot(train_steps, train_means, "--", alpha=0.7, label="training episodes (exploring)")
    if solved_threshold is not None:
        axis.axhline(solved_threshold, color="gray", linestyle=":", label=f"solved ({solved_threshold:g})")
    axis.set_xlabel("environment steps")
    axis.set_ylabel("return")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def return_curve_of_active_run(solved_threshold=None):
    """The return curve of the active MLflow run, or None outside a run or before any evaluation."""
    import mlflow

    from shared import tracking

    run = mlflow.active_run()
    if run is None:
        return None
    history = tracking.metric_history(run.info.run_id)
    if not history.get("eval_return_mean"):
        return None
    return return_curve(history, solved_threshold)
