"""Task `autoencoder`: a convolutional (denoising) autoencoder of Fashion-MNIST/MNIST (`../autoencoders.py` has the
model, the losses and the signatures), served on raw uint8 images."""

import numpy as np
import tensorflow as tf
from keras import ops

from apps.vision.generative import plots
from apps.vision.generative.autoencoders import ImageAutoencoder
from apps.vision.generative.models import build_decoder, build_encoder
from apps.vision.generative.pixels import to_float, to_uint8
from apps.vision.generative.plots import SampleGridLogger
from apps.vision.generative.tasks.base import GenerativeTask
from shared import data as shared_data
from shared.app import Endpoint, Report
from shared.optimizers import build_optimizer


class AutoencoderTask(GenerativeTask):
    name = "autoencoder"
    variational = False
    model_class = ImageAutoencoder
    headline = ("test_reconstruction_mse", "min")

    def build_data(self, config, source):
        data = super().build_data(config, source)
        data.info["latent_dim"] = config.latent_dim
        return data

    # === Model ===

    def build_model(self, config, data):
        model = self.model_class(build_encoder(config.latent_dim, config.filters, variational=self.variational),
                                 build_decoder(config.latent_dim, config.filters),
                                 noise_level=config.noise_level, seed=config.seed, name=self.name)
        model(np.zeros((1, 28, 28), np.uint8))  # builds the weights before compile and BackupAndRestore
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)))
        return model

    def metric_callbacks(self, config, data):
        """The progress grid: fixed validation images (or test images if there is no validation split) above
        their reconstructions, every `sample_every` epochs."""
        count = max(1, config.num_samples // 2)
        images = (next(iter(data.validation)).numpy() if data.validation is not None else data.test[0])[:count]

        def reconstructions(model):
            return np.concatenate([images, ops.convert_to_numpy(to_uint8(model(images)))])

        return [SampleGridLogger(reconstructions, every=config.sample_every, key="reconstructions")]

    # === Serving ===

    def endpoints(self, model, config, info):
        image_spec = [tf.TensorSpec([None, *info["image_shape"]], tf.uint8, name="images")]

        def serve(images):
            pixels = to_float(images)
            reconstruction = model.reconstruct(pixels)
            return {"reconstructions": to_uint8(reconstruction),
                    "anomaly_scores": ops.mean(ops.square(reconstruction - pixels), axis=(1, 2, 3))}

        def decode(latents):
            return {"images": to_uint8(ops.sigmoid(model.decoder(latents)))}

        latent_spec = [tf.TensorSpec([None, info["latent_dim"]], tf.float32, name="latents")]
        return {"serving_default": Endpoint(serve, image_spec),
                "encode": Endpoint(self.encode_fn(model), image_spec),
                "decode": Endpoint(decode, latent_spec)}

    def encode_fn(self, model):
        def encode(images):
            return {"latents": model.encoder(to_float(images))}

        return encode

    def signature_examples(self, data):
        images = data.test[0][:16]
        latents = np.random.default_rng(0).normal(size=(4, data.info["latent_dim"]))
        return {"serving_default": {"images": images}, "encode": {"images": images},
                "decode": {"latents": latents.astype(np.float32)}}

    # === Evaluation ===

    def evaluate(self, serving, data, config, batch_size=512):
        images, labels = data.test
        outputs = serving.batched(batch_size, images=images)
        scores = outputs["anomaly_scores"]
        class_names = data.info["class_names"]
        metrics = {"test_reconstruction_mse": float(np.mean(scores)),
                   "test_reconstruction_mse_uint8": _mse(outputs["reconstructions"], images)}
        shown = np.arange(min(16, len(images)))
        rows, labels_of_rows = [images[shown]], ["original"]
        if config.noise_level:
            noisy = add_noise(images, config.noise_level, config.seed)
            denoised = serving.batched(batch_size, images=noisy)["reconstructions"]
            metrics["test_noisy_input_mse"] = _mse(noisy, images)
            metrics["test_denoising_mse"] = _mse(denoised, images)
            rows += [noisy[shown], denoised[shown]]
            labels_of_rows += [f"noise {config.noise_level:g}", "denoised"]
        rows.append(outputs["reconstructions"][shown])
        labels_of_rows.append("reconstruction")
        worst = np.argsort(-scores)[:len(shown)]
        figures = {
            "reconstructions.png": plots.grid_figure(
                np.concatenate(rows),
                f"Test images and their reconstructions (MSE {metrics['test_reconstruction_mse']:.4f})",
                columns=len(shown), row_labels=labels_of_rows),
            "most_anomalous.png": plots.grid_figure(
                np.concatenate([images[worst], outputs["reconstructions"][worst]]),
                "The test images with the highest anomaly scores (reconstruction error)", columns=len(worst),
                row_labels=["original", "reconstruction"]),
        }
        table = {"class": list(class_names),
                 "mean_anomaly_score": [float(scores[labels == k].mean()) if np.any(labels == k) else float("nan")
                                        for k in range(len(class_names))],
                 "test_images": [int(np.sum(labels == k)) for k in range(len(class_names))]}
        report = Report(metrics=metrics, figures=figures, tables={"anomaly_scores_by_class.json": table})
        if config.latent_dim == 2:
            latents = serving.batched(batch_size, signature="encode", images=images)["latents"]
            report.figures["latent_space.png"] = plots.latent_scatter(latents, labels, class_names)
        return report


def add_noise(images, noise_level, seed):
    """uint8 images with Gaussian noise of `noise_level` (pixels in [0, 1]) added, clipped, rounded (seeded)."""
    noise = np.random.default_rng(seed).normal(0.0, noise_level, size=images.shape)
    return np.clip(np.round(images + 255.0 * noise), 0, 255).astype(np.uint8)


def _mse(images, targets):
    """Mean squared difference of two uint8 image arrays, on [0, 1] pixels."""
    return float(np.mean(np.square(images.astype(np.float64) / 255 - targets.astype(np.float64) / 255)))
