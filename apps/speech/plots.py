"""Speech figures: log-mel spectrograms of example clips."""

import numpy as np

from shared.plots import plt


def spectrogram_grid(spectrograms, titles, columns=4, frame_seconds=0.01):
    """Log-mel spectrograms `[n, frames, mels]` as images, time on x and mel bin on y."""
    rows = int(np.ceil(len(spectrograms) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, spectrogram, title in zip(axes.ravel(), spectrograms, titles):
        frames = spectrogram.shape[0]
        axis.imshow(np.asarray(spectrogram).T, origin="lower", aspect="auto", cmap="magma",
                    extent=(0, frames * frame_seconds, 0, spectrogram.shape[1]))
        axis.set_title(title, fontsize=8)
        axis.axis("on")
        axis.set_xlabel("seconds", fontsize=7)
        axis.set_ylabel("mel bin", fontsize=7)
        axis.tick_params(labelsize=6)
    figure.tight_layout()
    return figure
