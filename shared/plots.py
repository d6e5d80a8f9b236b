"""Figures logged to MLflow as PNG images. Matplotlib runs headless (Agg)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def learning_curves(history):
    """`history`: {metric: [(step, value), ...]}; train and `val_` metrics share a panel."""
    names = sorted(key for key in history if not key.startswith("val_") and key not in ("epoch", "epoch_seconds"))
    names = [name for name in names if history[name]] or sorted(history)
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if history.get(key):
                steps, values = zip(*history[key])
                axis.plot(steps, values, style, marker="o", markersize=3, label=key)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure


def confusion_matrix(matrix, class_names, title="Confusion matrix (test)"):
    matrix = np.asarray(matrix)
    size = max(4.0, 0.6 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis)
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, str(value), ha="center", va="center", fontsize=7,
                  color="white" if value > threshold else "black")
    figure.tight_layout()
    return figure


def image_grid(images, titles, columns=8):
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.9 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, title in zip(axes.ravel(), images, titles):
        axis.imshow(np.squeeze(image), cmap="gray")
        axis.set_title(title, fontsize=7)
    figure.tight_layout()
    return figure


def optimization_history(complete, failed, monitor, direction):
    """A hyperparameter search: each complete trial's objective and the best so far, failed trials marked.

    `complete`: `[(trial number, value), ...]` in trial order; `failed`: trial numbers; `direction`:
    "maximize" or "minimize".
    """
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    if complete:
        better = max if direction == "maximize" else min
        best, running = None, []
        for _number, value in complete:
            best = value if best is None else better(best, value)
            running.append(best)
        numbers = [number for number, _value in complete]
        axis.plot(numbers, [value for _number, value in complete], "o", label=f"trial {monitor}")
        axis.step(numbers, running, where="post", label="best so far")
    for index, number in enumerate(failed):
        axis.axvline(number, color="tab:red", alpha=0.3, label="failed trial" if index == 0 else None)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("trial")
    axis.set_ylabel(monitor)
    axis.set_title(f"Optimization history ({direction} {monitor}, validation)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure
