"""What the two sampling generators, `gan` and `diffusion`, share: their Keras model maps latents to images.

Both models' `call({"latents": [batch, *latent_shape], "class_ids": [batch]})` returns pixels in [-1, 1]
`[batch, 28, 28, 1]` (`class_ids` only for a class-conditional model): the GAN's generator, or the diffusion
model's deterministic DDIM sampler from the noise `latents`. So one `SamplerTask` (`tasks/base.py`) serves both
with this module's endpoints:

    generate(seed, count[, class_id])     count images from latents drawn from the seed (stateless ops): the same
                                          seed gives the same images in any process (`serving_default` too)
    interpolate(seed, count[, class_id])  count images along the great circle between two latents of the seed
                                          (spherical interpolation: the latents' norm stays typical)
    the training grid                     `generate(seed=0, ...)`'s images every `sample_every` epochs (MLflow)
    evaluate                              `eval_samples` generated images (seeds from config.seed + 1 on) against
                                          the test images: pixel-space FID/KID always; the classifier's FID/KID and
                                          class accuracy with `quality_classifier_run` (quality.py);
                                          the final sample grid and the interpolations as figures

    generate_endpoint(sample_fn, ...)     -> Endpoint `generate(seed, count[, class_id]) -> {"images": uint8}` (the
                                          vae's `generate` too)

Randomness at serving time is an input: `generate` takes an int32 scalar `seed` and derives every random
draw from it with stateless ops (`shared.export.stateless_seed`), so a seed gives the same images in any
process. The sample grids use `seed=0` with `config.num_samples` images, the same at every epoch.
"""

import numpy as np
import tensorflow as tf

from apps.vision.generative.pixels import UNIT, to_uint8
from shared.app import Endpoint
from shared.export import seed_spec, stateless_seed

VALUE_RANGE = (-1.0, 1.0)
INTERPOLATION_STREAM = 1  # interpolate's two end latents come from stream 1 of the seed (generate uses stream 0)
MAX_COUNT = 1024  # images one `generate` request may ask for


def latents_for(seed, count, latent_shape):
    """`count` standard normal latents `[count, *latent_shape]`, a function of the `[2]` int32 seed only."""
    return tf.random.stateless_normal(tf.concat([[count], tf.constant(latent_shape, tf.int32)], 0), seed=seed)


def slerp_latents(seed, count, latent_shape):
    """`count` latents along the great circle from one standard normal latent of `seed` to another."""
    ends = tf.reshape(latents_for(seed, 2, latent_shape), [2, -1])
    start, end = ends[0], ends[1]
    angle = tf.acos(tf.clip_by_value(tf.reduce_sum(start * end) / (tf.norm(start) * tf.norm(end)), -1.0, 1.0))
    steps = tf.linspace(0.0, 1.0, count)[:, None]
    path = (tf.sin((1.0 - steps) * angle) * start + tf.sin(steps * angle) * end) / tf.maximum(tf.sin(angle), 1e-6)
    return tf.reshape(path, tf.concat([[count], tf.constant(latent_shape, tf.int32)], 0))


def model_inputs(latents, class_ids):
    return {"latents": latents} if class_ids is None else {"latents": latents, "class_ids": class_ids}


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
        message = f"Invalid count. Expected 1 to {max_count} images."
        checks = [tf.debugging.assert_greater_equal(count, 1, message=message),
                  tf.debugging.assert_less_equal(count, max_count, message=message)]
        with tf.control_dependencies(checks):  # every op reading the count waits for the checks
            return tf.identity(count)

    def output(images):
        return {"images": images if images.dtype == tf.uint8 else to_uint8(images, value_range)}

    if num_classes:
        def generate(seed, count, class_id):
            count = checked_count(count)
            message = f"Invalid class_id. Expected a class id in [0, {num_classes - 1}]."
            with tf.control_dependencies([tf.debugging.assert_greater_equal(class_id, 0, message=message),
                                          tf.debugging.assert_less(class_id, num_classes, message=message)]):
                class_id = tf.identity(class_id)
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


def draw(serving, total, num_classes=None, first_seed=1, per_request=MAX_COUNT):
    """`total` uint8 images from `generate`, requests of at most `per_request` with seeds `first_seed`, +1, ...;
    with `num_classes`, the same number of each class (`total` rounded down to a multiple). Returns
    `(images, class ids or None)`."""
    requests = []
    if num_classes:
        per_class = max(1, total // num_classes)
        for class_id in range(num_classes):
            for start in range(0, per_class, per_request):
                requests.append((min(per_request, per_class - start), class_id))
    else:
        requests = [(min(per_request, total - start), None) for start in range(0, total, per_request)]
    images, class_ids = [], []
    for number, (count, class_id) in enumerate(requests):
        inputs = {"seed": np.int32(first_seed + number), "count": np.int32(count)}
        if class_id is not None:
            inputs["class_id"] = np.int32(class_id)
        images.append(serving["generate"](**inputs)["images"])
        class_ids.append(np.full(count, -1 if class_id is None else class_id))
    return np.concatenate(images), (np.concatenate(class_ids) if num_classes else None)
