"""What the two sampling generators, `gan` and `diffusion`, share: their Keras model maps latents to images.

Both models' `call({"latents": [batch, *latent_shape], "class_ids": [batch]})` returns pixels in [-1, 1]
`[batch, 28, 28, 1]` (`class_ids` only for a class-conditional model): the GAN's generator, or the diffusion
model's deterministic DDIM sampler from the noise `latents`. So one `SamplerTask` serves both:

    generate(seed, count[, class_id])     count images from latents drawn from the seed (stateless ops): the same
                                          seed gives the same images in any process (`serving_default` too)
    interpolate(seed, count[, class_id])  count images along the great circle between two latents of the seed
                                          (spherical interpolation: the latents' norm stays typical)
    the training grid                     `generate(seed=0, ...)`'s images every `sample_every` epochs (MLflow)
    evaluate                              `eval_samples` generated images (seeds from config.seed + 1 on) against
                                          the test images: pixel-space FID/KID always; the classifier's FID/KID and
                                          class accuracy with `quality_classifier_run` (apps/vision/quality.py);
                                          the final sample grid and the interpolations as figures
"""

import time

import keras
import numpy as np
import tensorflow as tf

from apps.vision import generative, quality
from apps.vision.generative import GenerativeTask, SampleGridLogger, to_uint8
from shared.app import Report
from shared.export import stateless_seed

VALUE_RANGE = (-1.0, 1.0)
INTERPOLATION_STREAM = 1  # interpolate's two end latents come from stream 1 of the seed (generate uses stream 0)


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


class SamplerTask(GenerativeTask):
    """A GAN or diffusion task: subclasses build the model (`build_model`) and say `latent_shape(config)`."""

    def conditional(self, config):
        return config.conditional

    def latent_shape(self, config):
        raise NotImplementedError

    def build_data(self, config, source):
        data = super().build_data(config, source)
        data.info.update({"conditional": bool(config.conditional), "latent_shape": list(self.latent_shape(config))})
        return data

    def num_classes(self, config, info):
        return len(info["class_names"]) if config.conditional else None

    # === Model ===

    def model_example(self, data):
        """Four latents (and class ids 0-3): the model's own inputs, for the MLflow signature and `build`."""
        latents = np.random.default_rng(0).standard_normal([4, *data.info["latent_shape"]]).astype(np.float32)
        return model_inputs(latents, np.arange(4, dtype=np.int32) if data.info["conditional"] else None)

    def metric_callbacks(self, config, data):
        """The progress grid: what `generate(seed=0)` serves, every `sample_every` epochs (a row per class when
        conditional, as the final `samples.png`)."""
        num_classes = self.num_classes(config, data.info)
        shape = self.latent_shape(config)
        if num_classes:
            columns = max(1, min(10, config.num_samples // num_classes))
            latents = tf.tile(latents_for(stateless_seed(0), columns, shape), [num_classes] + [1] * len(shape))
            class_ids = tf.repeat(tf.range(num_classes, dtype=tf.int32), columns)
        else:
            latents, class_ids = latents_for(stateless_seed(0), config.num_samples, shape), None

        def samples(model):
            return keras.ops.convert_to_numpy(to_uint8(model(model_inputs(latents, class_ids)), VALUE_RANGE))

        return [SampleGridLogger(samples, every=config.sample_every, key="samples")]

    # === Serving ===

    def endpoints(self, model, config, info):
        num_classes, shape = self.num_classes(config, info), self.latent_shape(config)

        def sample(seed, count, class_ids):
            return model(model_inputs(latents_for(seed, count, shape), class_ids))

        def interpolate(seed, count, class_ids):
            seed = tf.random.experimental.stateless_fold_in(seed, INTERPOLATION_STREAM)
            return model(model_inputs(slerp_latents(seed, count, shape), class_ids))

        generate = generative.generate_endpoint(sample, num_classes, VALUE_RANGE)
        return {"serving_default": generate, "generate": generate,
                "interpolate": generative.generate_endpoint(interpolate, num_classes, VALUE_RANGE)}

    def example_inputs(self, data):
        example = {"seed": np.int32(7), "count": np.int32(4)}
        if data.info["conditional"]:
            example["class_id"] = np.int32(len(data.info["class_names"]) - 1)
        return example

    def signature_examples(self, data):
        example = self.example_inputs(data)
        return {"serving_default": example, "generate": example, "interpolate": example}

    # === Evaluation ===

    def evaluate(self, serving, data, config):
        num_classes = self.num_classes(config, data.info)
        test_images, _test_labels = data.test
        started = time.perf_counter()
        generated, class_ids = draw(serving, config.eval_samples, num_classes, first_seed=config.seed + 1)
        sample_seconds = time.perf_counter() - started
        generated_pixels, test_pixels = quality.pixel_features(generated), quality.pixel_features(test_images)
        pixel_kid, _ = quality.kid(generated_pixels, test_pixels)
        metrics = {"test_pixel_fid": quality.fid(generated_pixels, test_pixels),
                   "test_pixel_kid": pixel_kid, "test_sample_seconds": sample_seconds,
                   "test_samples_per_second": len(generated) / max(sample_seconds, 1e-9)}
        if config.quality_classifier_run:
            classifier = quality.load_classifier(config.quality_classifier_run)
            metrics.update(quality.sample_quality(classifier, generated, test_images, class_ids, prefix="test_"))
        figures = {"samples.png": generative.samples_figure(serving, config, "generate(seed=0)", num_classes),
                   "interpolations.png": interpolations_figure(serving, config, num_classes)}
        return Report(metrics=metrics, figures=figures)


def draw(serving, total, num_classes=None, first_seed=1, per_request=generative.MAX_COUNT):
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


def interpolations_figure(serving, config, num_classes=None, rows=4):
    """Rows of `interpolate(seed=row, count=interpolation_steps)`; one row per class when conditional."""
    requests = ([{"seed": np.int32(0), "class_id": np.int32(class_id)} for class_id in range(num_classes)]
                if num_classes else [{"seed": np.int32(row)} for row in range(rows)])
    images = np.concatenate([serving["interpolate"](count=np.int32(config.interpolation_steps), **request)["images"]
                             for request in requests])
    title = (f"interpolate(seed=0, class_id=0..{num_classes - 1})" if num_classes
             else f"interpolate(seed=0..{rows - 1})")
    return generative.grid_figure(images, title, columns=config.interpolation_steps)
