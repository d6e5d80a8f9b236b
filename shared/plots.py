"""Figures logged to MLflow as PNG images, drawn to be read at the size the MLflow UI shows them.

Matplotlib draws headless (Agg) once a verb calls `use_headless_backend()`: importing this module
selects nothing.
"""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

NOT_CURVES = ("epoch", "epoch_seconds")  # bookkeeping: `epoch` is the step itself
MAX_COLUMNS = 3  # panels a row: the UI shows a figure about 1000 px wide
FONT_SIZES = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11,
              "ytick.labelsize": 11, "legend.fontsize": 10}


def use_headless_backend():
    """Draw to files, never to a window (no display needed): the verbs that make figures call it first."""
    matplotlib.use("Agg")


def learning_curves(history):
    """`history`: {metric: [(step, value), ...]}; one panel a metric, its `val_` twin dashed beside it.

    A validation metric without a training twin (`val_ndcg_at_10`) gets a panel of its own; a constant
    learning rate goes in the figure's title instead of a flat panel.
    """
    history = {key: values for key, values in history.items() if values and key not in NOT_CURVES}
    subtitle = None
    rates = [value for _step, value in history.get("learning_rate", [])]
    if rates and len(set(rates)) == 1:
        subtitle = f"learning rate {rates[0]:g} " + ("(constant)" if len(rates) > 1 else "at the end of the epoch")
        del history["learning_rate"]
    names = sorted({key.removeprefix("val_") for key in history})
    columns = max(1, min(MAX_COLUMNS, len(names)))
    rows = max(1, -(-len(names) // columns))
    with plt.rc_context(FONT_SIZES):
        figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False)
        for axis in axes.ravel()[len(names):]:
            axis.axis("off")
        for axis, name in zip(axes.ravel(), names):
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if history.get(key):
                    steps, values = zip(*history[key])
                    axis.plot(steps, values, style, marker="o", markersize=3, label=key)
            axis.set_title(name)
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
            axis.legend()
        if subtitle:
            figure.suptitle(subtitle)
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


def image_grid(images, titles, columns=8, highlight=None, title=None):
    """Images with a title each; `highlight[i]` true draws image i's title and frame in red (a wrong prediction)."""
    highlight = list(highlight) if highlight is not None else [False] * len(images)
    if len(highlight) != len(images):
        raise ValueError(f"One highlight flag per image. Received: {len(highlight)} flags for {len(images)} images. "
                         "Expected as many flags as images, or highlight=None.")
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.55 * columns, 2.0 * rows + (0.4 if title else 0)),
                                squeeze=False)
    for axis in axes.ravel()[len(images):]:
        axis.axis("off")
    for axis, image, label, marked in zip(axes.ravel(), images, titles, highlight):
        axis.imshow(np.squeeze(image), cmap="gray")
        axis.set_xticks([])
        axis.set_yticks([])
        color = "tab:red" if marked else "black"
        axis.set_title(label, fontsize=10, color=color, fontweight="bold" if marked else "normal")
        for spine in axis.spines.values():
            spine.set_visible(bool(marked))
            spine.set_color(color)
            spine.set_linewidth(3)
    if title:
        figure.suptitle(title, fontsize=13)
    figure.tight_layout()
    return figure


def optimization_history(complete, failed, monitor, direction):
    """A hyperparameter search: each complete trial's objective and the best so far, failed trials marked.

    `complete`: `[(trial number, value), ...]` in trial order; `failed`: trial numbers; `direction`:
    "maximize" or "minimize".
    """
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
