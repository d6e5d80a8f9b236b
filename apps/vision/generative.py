"""What the generative vision tasks (autoencoder, vae, gan, diffusion) share.

    GenerativeTask                      a `shared.app.Task` base: the classifier's files and checks
                                        (`check_inputs`), unlabeled data (`build_data`), `example_inputs`
    build_data(config, source, labels)  -> Data: batches of uint8 images `[batch, 28, 28]` (features only), or
                                        `(images, class_ids)` for conditional models; the same splits, limits,
                                        dataset records and fingerprints as classification
                                        (`apps.vision.data.split_arrays`); `Data.test` is `(images, labels)`
    to_float(images, value_range)       uint8 `[batch, 28, 28]` -> float32 `[batch, 28, 28, 1]` in value_range
    to_uint8(pixels, value_range)       float `[batch, 28, 28(, 1)]` in value_range -> uint8 `[batch, 28, 28]`
                                        (clipped, rounded); both are graph ops, for models and endpoints
    generate_endpoint(sample_fn, ...)   -> Endpoint `generate(seed, count[, class_id]) -> {"images": uint8}`
    SampleGridLogger(sample_fn, every)  a Keras callback: a grid of samples from fixed seeds logged to MLflow as a
                                        step-indexed image every `every` epochs (the run page's Images show
                                        training progress) and after the last epoch
    montage(images) / grid_figure(...)  the grid as one uint8 picture / as a matplotlib figure (Report.figures)
    samples_figure(serving, config)     the final grid, drawn from the served `generate` with seeds 0, 1, ...

Randomness at serving time is an input: `generate` takes an int32 scalar `seed` and derives every random
draw from it with stateless ops (`shared.export.stateless_seed`), so a seed gives the same images in any
process. The sample grids use `seed=0` with `config.num_samples` images, the same at every epoch.
"""

import keras
import numpy as np
import tensorflow as tf

from apps.vision import data as vision_data
from shared import data as shared_data
from shared.app import Data, Endpoint, Task
from shared.export import seed_spec, stateless_seed

IMAGE_SHAPE = (28, 28)
MAX_COUNT = 1024  # images one `generate` request may ask for
UNIT = (0.0, 1.0)


# === Data ===


class GenerativeTask(Task):
    """Base of the generative tasks: Fashion-MNIST/MNIST found and checked as the classifier does, images without
    labels for `fit` (set `conditional(config)` to get `(images, class_ids)` batches), raw uint8 test images."""

    app = "vision"
    monitor = "val_loss"
    monitor_mode = "min"

    def conditional(self, config):
        """Whether training batches carry class ids (a class-conditional model)."""
        return False

    def check_inputs(self, config, data_dir):
        return vision_data.data_source(config, data_dir)

    def build_data(self, config, source):
        return build_data(config, source, labels=self.conditional(config))

    def example_inputs(self, data):
        return {"images": data.test[0][:16]}


def build_data(config, source, labels=False, drop_remainder=False):
    """Training and validation batches of uint8 images (with int32 class ids when `labels`), the test arrays and
    the lineage: the classifier's splits of the same files (`apps.vision.data.split_arrays`)."""
    splits, records = vision_data.split_arrays(config, source)
    train = images_dataset(splits["train"], config.batch_size, labels=labels, shuffle=True, seed=config.seed,
                           drop_remainder=drop_remainder)
    validation = (images_dataset(splits["validation"], config.batch_size * 2, labels=labels)
                  if len(splits["validation"][0]) else None)
    return Data(train=train, validation=validation, test=splits["test"], records=records,
                info={"class_names": vision_data.CLASS_NAMES[config.dataset], "image_shape": list(IMAGE_SHAPE),
                      "dataset": config.dataset})


def images_dataset(arrays, batch_size, labels=False, shuffle=False, seed=0, drop_remainder=False):
    """Batches of uint8 images, or `(images, int32 class ids)`, from `(images, labels)` arrays in memory."""
    images, class_ids = arrays
    tensors = (images, class_ids.astype(np.int32)) if labels else images
    return shared_data.pipeline(tf.data.Dataset.from_tensor_slices(tensors), batch_size, shuffle=shuffle, seed=seed,
                                cache=False, drop_remainder=drop_remainder)


# === Pixels ===


def to_float(images, value_range=UNIT):
    """uint8 images `[batch, 28, 28]` (or with a channel axis) -> float32 `[batch, 28, 28, 1]` in `value_range`."""
    low, high = value_range
    pixels = keras.ops.cast(images, "float32") * ((high - low) / 255.0) + low
    return keras.ops.expand_dims(pixels, -1) if len(pixels.shape) == 3 else pixels


def to_uint8(pixels, value_range=UNIT):
    """float pixels `[batch, 28, 28, 1]` (or without the channel axis) in `value_range` -> uint8 `[batch, 28, 28]`:
    clipped to the range, then rounded to the nearest of 256 levels."""
    low, high = value_range
    if len(pixels.shape) == 4:
        pixels = keras.ops.squeeze(pixels, -1)
    unit = keras.ops.clip((keras.ops.cast(pixels, "float32") - low) / (high - low), 0.0, 1.0)
    return keras.ops.cast(keras.ops.round(unit * 255.0), "uint8")


# === Serving ===


def generate_signature(num_classes=None):
    """`seed` (int32 scalar), `count` (int32 scalar) and, for a conditional model, `class_id` (int32 scalar)."""
    signature = [seed_spec(), tf.TensorSpec([], tf.int32, name="count")]
    if num_classes:
        signature.append(tf.TensorSpec([], tf.int32, name="class_id"))
    return signature


def generate_endpoint(sample_fn, num_classes=None, value_range=UNIT, max_count=MAX_COUNT):
    """The `generate` Endpoint: `seed, count[, class_id] -> {"images": uint8 [count, 28, 28]}`.

    `sample_fn(seed, count, class_ids)` draws the images with stateless random ops from `seed` (a `[2]` int32
    tensor, `shared.export.stateless_seed(client seed)`; derive more streams with
    `tf.random.experimental.stateless_split` or `stateless_fold_in`) and returns float pixels in `value_range`
    `[count, 28, 28, 1]` (or uint8 images). `class_ids` is `[count]` int32 (all `class_id`), or None when the
    endpoint is unconditional (`num_classes` None). A `count` outside [1, max_count] or a `class_id` outside
    [0, num_classes) fails the request with an InvalidArgumentError naming the input.
    """

    def checked_count(count):
        tf.debugging.assert_greater_equal(count, 1, message=f"Invalid count. Expected 1 to {max_count} images.")
        tf.debugging.assert_less_equal(count, max_count, message=f"Invalid count. Expected 1 to {max_count} images.")
        return count

    def output(images):
        return {"images": images if images.dtype == tf.uint8 else to_uint8(images, value_range)}

    if num_classes:
        def generate(seed, count, class_id):
            count = checked_count(count)
            message = f"Invalid class_id. Expected a class id in [0, {num_classes - 1}]."
            tf.debugging.assert_greater_equal(class_id, 0, message=message)
            tf.debugging.assert_less(class_id, num_classes, message=message)
            return output(sample_fn(stateless_seed(seed), count, tf.fill([count], class_id)))
    else:
        def generate(seed, count):
            return output(sample_fn(stateless_seed(seed), checked_count(count), None))

    return Endpoint(generate, generate_signature(num_classes))


def generate_examples(config, num_classes=None):
    """The `generate` request the export is verified on (`signature_examples`)."""
    example = {"seed": np.int32(config.seed), "count": np.int32(min(config.num_samples, 16))}
    if num_classes:
        example["class_id"] = np.int32(num_classes - 1)
    return example


# === Sample grids ===


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
    from shared import plots  # noqa: F401 - selects the headless Agg backend

    import matplotlib.pyplot as plt

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
