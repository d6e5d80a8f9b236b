"""The generative tasks' base classes.

    GenerativeTask   a `shared.app.Task` base (autoencoder, vae, gan, diffusion): the classifier's files and checks
                     (`check_inputs`), unlabeled data (`build_data`, `../data.py`), `example_inputs`
    SamplerTask      a GenerativeTask whose model maps latents to images (gan, diffusion): the `generate` and
                     `interpolate` endpoints (`../sampling.py`), the training grid, and `evaluate` (pixel-space
                     FID/KID, the classifier's with `quality_classifier_run`: `../quality.py`)
"""

import time

import keras
import numpy as np
import tensorflow as tf

from apps.vision.classification import data as vision_data
from apps.vision.generative import data as generative_data
from apps.vision.generative import plots, quality
from apps.vision.generative.pixels import to_uint8
from apps.vision.generative.plots import SampleGridLogger
from apps.vision.generative.sampling import (INTERPOLATION_STREAM, VALUE_RANGE, draw, generate_endpoint, latents_for,
                                             model_inputs, slerp_latents)
from shared.app import Report, Task
from shared.export import stateless_seed


class GenerativeTask(Task):
    """Base of the generative tasks: Fashion-MNIST/MNIST found and checked as the classifier does, images without
    labels for `fit` (set `conditional(config)` to get `(images, class_ids)` batches), raw uint8 test images."""

    app = "vision"
    monitor = "val_loss"
    monitor_mode = "min"
    cannot_distribute = ("its own train_step averages the loss within each replica and the optimizer sums the "
                         "replicas' gradients, so N replicas would step N times too far")
    precision_refusal = ("its own train_step computes the losses and applies the gradients by hand (no float32 "
                         "loss cast, no loss scaling), and its samplers need float32 noise schedules")

    def conditional(self, config):
        """Whether training batches carry class ids (a class-conditional model)."""
        return False

    def check_inputs(self, config, data_dir):
        return vision_data.data_source(config, data_dir)

    def build_data(self, config, source):
        return generative_data.build_data(config, source, labels=self.conditional(config))

    def example_inputs(self, data):
        return {"images": data.test[0][:16]}


class SamplerTask(GenerativeTask):
    """A GAN or diffusion task: subclasses build the model (`build_model`) and say `latent_shape(config)`."""

    # The sample quality every evaluation measures (the quality classifier's `test_fid` exists only with
    # `quality_classifier_run`).
    headline = ("test_pixel_fid", "min")

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

        generate = generate_endpoint(sample, num_classes, VALUE_RANGE)
        return {"serving_default": generate, "generate": generate,
                "interpolate": generate_endpoint(interpolate, num_classes, VALUE_RANGE)}

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
        figures = {"samples.png": plots.samples_figure(serving, config, "generate(seed=0)", num_classes),
                   "interpolations.png": plots.interpolations_figure(serving, config, num_classes)}
        return Report(metrics=metrics, figures=figures)
