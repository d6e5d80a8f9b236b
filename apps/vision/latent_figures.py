"""Figures of an autoencoder's latent space, from its served `encode`/`decode` signatures: the test images' 2-d
codes by class, the decoded 2-d manifold, and decoded interpolations between test images."""

import statistics

import numpy as np

from apps.vision import generative


def latent_scatter(latents, labels, class_names):
    """The test images' 2-d codes (a vae's posterior means), coloured by class."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 6))
    colors = plt.get_cmap("tab10")
    for class_id, class_name in enumerate(class_names):
        chosen = labels == class_id
        axis.scatter(latents[chosen, 0], latents[chosen, 1], s=3, alpha=0.6, color=colors(class_id),
                     label=class_name)
    axis.set_xlabel("z[0]")
    axis.set_ylabel("z[1]")
    axis.set_title("Test images in the 2-d latent space")
    axis.legend(markerscale=4, fontsize=7, loc="best")
    figure.tight_layout()
    return figure


def latent_manifold(serving, steps=15):
    """The decoder over a `steps` x `steps` grid of 2-d codes at the prior's quantiles (5% to 95%)."""
    quantiles = [statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, steps)]
    grid = np.array([[x, y] for y in reversed(quantiles) for x in quantiles], np.float32)
    images = serving["decode"](latents=grid)["images"]
    return generative.grid_figure(images, "Decoded latent space (prior quantiles 5%..95% on each axis)",
                                  columns=steps)


def interpolations(serving, images, labels, pairs=6, steps=10):
    """Decoded straight lines between the codes of two test images of different classes, one pair per row."""
    first = [int(np.flatnonzero(labels == k)[0]) for k in np.unique(labels)]
    chosen = [(first[i % len(first)], first[(i + 1) % len(first)]) for i in range(min(pairs, len(first)))]
    if not chosen:
        chosen = [(0, min(1, len(images) - 1))]
    ends = serving["encode"](images=images[np.array(chosen).ravel()])["latents"].reshape(len(chosen), 2, -1)
    weights = np.linspace(0.0, 1.0, steps)[None, :, None]
    codes = (ends[:, :1] * (1 - weights) + ends[:, 1:] * weights).reshape(-1, ends.shape[-1]).astype(np.float32)
    decoded = serving["decode"](latents=codes)["images"].reshape(len(chosen), steps, 28, 28)
    rows = np.concatenate([np.concatenate([images[a][None], row, images[b][None]]) for (a, b), row in
                           zip(chosen, decoded)])
    return generative.grid_figure(rows, "Interpolations between test images (ends: the originals)",
                                  columns=steps + 2)
