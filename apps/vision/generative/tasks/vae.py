"""Task `vae`: a convolutional variational autoencoder of Fashion-MNIST/MNIST (`../autoencoders.py` has the model
and the ELBO); the autoencoder's signatures plus `generate` (seed, count) and `elbo` (images, seed)."""

import numpy as np
import tensorflow as tf
from keras import ops

from apps.vision.generative import plots
from apps.vision.generative.autoencoders import VariationalAutoencoder, elbo_terms
from apps.vision.generative.pixels import to_float, to_uint8
from apps.vision.generative.plots import SampleGridLogger
from apps.vision.generative.sampling import generate_endpoint
from apps.vision.generative.tasks.autoencoder import AutoencoderTask
from shared.app import Endpoint
from shared.export import seed_spec, stateless_seed

LATENT_SEED_STREAM = 0  # generate: z from stream 0 of the client's seed (the training grids use seed 0)
ELBO_SEED_STREAM = 1


class VAETask(AutoencoderTask):
    name = "vae"
    variational = True
    model_class = VariationalAutoencoder
    headline = ("test_elbo", "max")  # the test images' evidence lower bound in nats, which the VAE maximizes

    def metric_callbacks(self, config, data):
        """The progress grid: the images `generate(seed=0, count=num_samples)` serves, every `sample_every` epochs."""
        latents = prior_sample(stateless_seed(0, LATENT_SEED_STREAM), config.num_samples, config.latent_dim)

        def samples(model):
            return ops.convert_to_numpy(to_uint8(ops.sigmoid(model.decoder(latents))))

        return [SampleGridLogger(samples, every=config.sample_every, key="samples")]

    def endpoints(self, model, config, info):
        endpoints = super().endpoints(model, config, info)

        def sample(seed, count, _class_ids):
            return ops.sigmoid(model.decoder(prior_sample(seed, count, config.latent_dim)))

        def elbo(images, seed):
            """Per-image ELBO terms averaged over `elbo_samples` latent samples, drawn from `seed`."""
            pixels = to_float(images)
            mean, log_variance = model.encoder(pixels)
            samples = config.elbo_samples
            batch = tf.shape(mean)[0]
            noise = tf.random.stateless_normal([samples, batch, config.latent_dim], seed=stateless_seed(
                seed, ELBO_SEED_STREAM))
            repeat = lambda tensor: tf.reshape(tf.tile(tensor[None], [samples] + [1] * (len(tensor.shape))),
                                               [-1, *tensor.shape[1:]])
            reconstruction, kl = elbo_terms(model.decoder, repeat(pixels), repeat(mean), repeat(log_variance),
                                            tf.reshape(noise, [-1, config.latent_dim]))
            reconstruction = tf.reduce_mean(tf.reshape(reconstruction, [samples, batch]), axis=0)
            kl = tf.reduce_mean(tf.reshape(kl, [samples, batch]), axis=0)
            return {"elbo": -(reconstruction + kl), "reconstruction": reconstruction, "kl": kl}

        endpoints["generate"] = generate_endpoint(sample)
        endpoints["elbo"] = Endpoint(elbo, [tf.TensorSpec([None, *info["image_shape"]], tf.uint8, name="images"),
                                            seed_spec()])
        return endpoints

    def encode_fn(self, model):
        def encode(images):
            mean, log_variance = model.encoder(to_float(images))
            return {"latents": mean, "log_variances": log_variance}

        return encode

    def signature_examples(self, data):
        examples = super().signature_examples(data)
        examples["generate"] = {"seed": np.int32(7), "count": np.int32(8)}
        examples["elbo"] = {"images": data.test[0][:8], "seed": np.int32(7)}
        return examples

    def evaluate(self, serving, data, config, batch_size=512):
        report = super().evaluate(serving, data, config, batch_size)
        images, labels = data.test
        batches = [serving["elbo"](images=images[start:start + batch_size], seed=np.int32(config.seed + start))
                   for start in range(0, len(images), batch_size)]
        terms = {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}
        report.metrics.update({"test_elbo": float(np.mean(terms["elbo"])),
                               "test_reconstruction_nats": float(np.mean(terms["reconstruction"])),
                               "test_kl_nats": float(np.mean(terms["kl"]))})
        report.figures["samples.png"] = plots.samples_figure(
            serving, config, f"generate(seed=0, count={config.num_samples})")
        report.figures["interpolations.png"] = plots.interpolations(serving, images, labels)
        if config.latent_dim == 2:
            report.figures["latent_manifold.png"] = plots.latent_manifold(serving)
        return report


def prior_sample(seed, count, latent_dim):
    """`count` latent codes from N(0, I), a function of the `[2]` seed only."""
    return tf.random.stateless_normal(tf.stack([count, latent_dim]), seed=seed)
