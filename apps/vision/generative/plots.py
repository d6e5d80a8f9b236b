"""The generative tasks' figures and sample grids (MLflow).

    montage(images) / grid_figure(...)  a grid of images as one uint8 picture / as a matplotlib figure
    samples_figure(serving, config)     the final grid, drawn from the served `generate` with seeds 0, 1, ...
    SampleGridLogger(sample_fn, every)  a Keras callback: a grid of samples from fixed seeds logged to MLflow as a
                                        step-indexed image every `every` epochs (the run page's Images show
                                        training progress) and after the last epoch
    interpolations_figure(serving, ...) rows of the served `interpolate` (GAN, diffusion)
    latent_scatter / latent_manifold / interpolations
                                        an autoencoder's latent space, from its served `encode`/`decode`: the
                                        test images' 2-d codes by class, the decoded 2-d manifold, and decoded
                                        interpolations between test images
"""

import statistics

import keras
import numpy as np

from apps.vision.generative.pixels import IMAGE_SHAPE


def montage(images, columns=None, pad=2, background=255):
    """uint8 images `[n, height, width]` tiled into one uint8 picture, `columns` per row (default: square-ish)."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    count, height, width = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    picture = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad), background, np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        picture[top:top + height, left:left + width] = image
    return picture


def grid_figure(images, title=None, columns=None, row_labels=None):
    """A matplotlib figure of the `montage` of `images` (a `Report.figures` entry); `row_labels` name the rows."""
    from shared.plots import plt

    picture = montage(images, columns)
    scale = 0.045
    figure, axis = plt.subplots(figsize=(max(3.0, picture.shape[1] * scale + (1.2 if row_labels else 0)),
                                         max(2.0, picture.shape[0] * scale + (0.5 if title else 0))))
    axis.imshow(picture, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axis.set_xticks([])
    if row_labels:
        height = IMAGE_SHAPE[0] + 2
        axis.set_yticks([2 + height * row + IMAGE_SHAPE[0] / 2 for row in range(len(row_labels))], row_labels)
        axis.tick_params(axis="y", length=0)
        for spine in axis.spines.values():
            spine.set_visible(False)
    else:
        axis.axis("off")
    if title:
        axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def samples_figure(serving, config, title, num_classes=None):
    """The final grid from the served `generate` (seeds as during training: seed 0, `num_samples` images); a
    conditional model gets one row per class instead."""
    if num_classes:
        columns = max(1, min(10, config.num_samples // num_classes))
        images = np.concatenate([serving["generate"](seed=np.int32(0), count=np.int32(columns),
                                                     class_id=np.int32(class_id))["images"]
                                 for class_id in range(num_classes)])
        return grid_figure(images, title, columns=columns)
    images = serving["generate"](seed=np.int32(0), count=np.int32(config.num_samples))["images"]
    return grid_figure(images, title)


class SampleGridLogger(keras.callbacks.Callback):
    """Log a grid of samples to MLflow every `every` epochs (0: only after training) and after the last epoch.

    `sample_fn(model) -> uint8 images [n, 28, 28]` must be deterministic (fixed seeds or fixed inputs), so the
    grids differ only by what the model learned. Each grid is a step-indexed MLflow image (`key`, step = epoch
    number), which the run page shows with a slider over the epochs. The run is `run_id`, else MLflow's active
    run (the one `dlsuite train` opened); without either the grid is drawn but not logged (the harness).
    Logging failures become warnings; training goes on.
    """

    def __init__(self, sample_fn, every=1, key="samples", run_id=None):
        super().__init__()
        self.sample_fn, self.every, self.key, self.run_id = sample_fn, every, key, run_id
        self.epoch, self.logged = None, []  # the last epoch seen, the epochs whose grid was logged

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch
        if self.every and (epoch + 1) % self.every == 0:
            self.log_grid(epoch)

    def on_train_end(self, logs=None):
        if self.epoch is not None and (not self.logged or self.logged[-1] != self.epoch):
            self.log_grid(self.epoch)

    def log_grid(self, epoch):
        import warnings

        import mlflow

        picture = montage(self.sample_fn(self.model))
        run_id = self.run_id or (mlflow.active_run().info.run_id if mlflow.active_run() else None)
        self.logged.append(epoch)
        if run_id is None:
            return picture
        try:
            mlflow.tracking.MlflowClient().log_image(run_id, picture, key=self.key, step=epoch + 1, synchronous=True)
        except Exception as error:  # noqa: BLE001 - tracking must never break training
            warnings.warn(f"MLflow logging of the {self.key} grid failed at epoch {epoch + 1}; training goes on: "
                          f"{error}")
        return picture


def interpolations_figure(serving, config, num_classes=None, rows=4):
    """Rows of `interpolate(seed=row, count=interpolation_steps)`; one row per class when conditional."""
    requests = ([{"seed": np.int32(0), "class_id": np.int32(class_id)} for class_id in range(num_classes)]
                if num_classes else [{"seed": np.int32(row)} for row in range(rows)])
    images = np.concatenate([serving["interpolate"](count=np.int32(config.interpolation_steps), **request)["images"]
                             for request in requests])
    title = (f"interpolate(seed=0, class_id=0..{num_classes - 1})" if num_classes
             else f"interpolate(seed=0..{rows - 1})")
    return grid_figure(images, title, columns=config.interpolation_steps)


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
    return grid_figure(images, "Decoded latent space (prior quantiles 5%..95% on each axis)",
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
    return grid_figure(rows, "Interpolations between test images (ends: the originals)",
                                  columns=steps + 2)
