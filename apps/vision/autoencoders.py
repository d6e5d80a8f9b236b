"""Tasks `autoencoder` and `vae`: convolutional autoencoders of Fashion-MNIST/MNIST, served on raw uint8 images.

    images uint8 [batch, 28, 28] -> pixels in [0, 1] [batch, 28, 28, 1]
      -> (GaussianNoise(noise_level): training only, the denoising autoencoder)
      -> encoder: Conv2D(filters[i], 3, strides 2) per stage (28 -> 14 -> 7), Flatten, Dense
         autoencoder: latent [batch, latent_dim]; vae: mean and log-variance [batch, latent_dim] each
      -> (vae: z = mean + exp(log_variance / 2) * eps, eps ~ N(0, I): the reparameterization)
      -> decoder: Dense to 7x7 (or 14x14) maps, Conv2DTranspose(filters[i], 3, strides 2) per stage, Conv2D(1):
         pixel logits [batch, 28, 28, 1]; the sigmoid gives the reconstruction

Losses (per image, averaged over the batch; `ImageAutoencoder.train_step`, `model.fit` as usual):
- autoencoder: the mean squared error between the clean pixels and the reconstruction, on [0, 1] pixels. The
  denoising variant adds the noise to the input only; validation and serving reconstruct clean images.
- vae: the negative ELBO in nats: the Bernoulli reconstruction cross-entropy summed over the 784 pixels
  (the gray levels in [0, 1] are the targets, as in keras-io's VAE) plus KL(q(z|x) || N(0, I)), in closed form.
  `val_loss` is the same one-sample estimate on the validation images.

Signatures (both tasks): `serving_default` (images -> `reconstructions` uint8, `anomaly_scores`: the per-image
mean squared reconstruction error on [0, 1] pixels), `encode` (images -> `latents`; vae also
`log_variances`: the posterior's mean and log-variance), `decode` (latents float32 -> `images` uint8). The vae
adds `generate` (seed, count -> images: z ~ N(0, I) drawn with stateless ops from the seed,
`apps.vision.generative.generate_endpoint`) and `elbo` (images, seed -> per-image `elbo`, `reconstruction`
and `kl` in nats, averaged over `elbo_samples` seeded latent samples), which `evaluate` reports on the test set.
"""


import keras
import numpy as np
import tensorflow as tf
from keras import ops

from apps.vision import generative, latent_figures
from apps.vision.generative import GenerativeTask, SampleGridLogger, to_float, to_uint8
from shared import data as shared_data
from shared.app import Endpoint, Report
from shared.export import seed_spec, stateless_seed
from shared.losses import gaussian_kl
from shared.optimizers import build_optimizer

PIXELS = 28 * 28
LATENT_SEED_STREAM = 0  # generate: z from stream 0 of the client's seed (the training grids use seed 0)
ELBO_SEED_STREAM = 1


# === Networks ===


def build_encoder(config, variational):
    """Pixels `[batch, 28, 28, 1]` in [0, 1] -> the latent code (autoencoder) or `[mean, log_variance]` (vae)."""
    pixels = keras.Input((28, 28, 1), name="pixels")
    x = pixels
    for stage, filters in enumerate(config.filters):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"down{stage}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(max(64, 4 * config.latent_dim), activation="relu", name="hidden")(x)
    if not variational:
        return keras.Model(pixels, keras.layers.Dense(config.latent_dim, name="latent")(x), name="encoder")
    mean = keras.layers.Dense(config.latent_dim, name="mean")(x)
    log_variance = keras.layers.Dense(config.latent_dim, name="log_variance")(x)
    return keras.Model(pixels, [mean, log_variance], name="encoder")


def build_decoder(config):
    """A latent code `[batch, latent_dim]` -> pixel logits `[batch, 28, 28, 1]`."""
    size = 28 // 2 ** len(config.filters)
    latents = keras.Input((config.latent_dim,), name="latents")
    x = keras.layers.Dense(max(64, 4 * config.latent_dim), activation="relu", name="hidden")(latents)
    x = keras.layers.Dense(size * size * config.filters[-1], activation="relu", name="expand")(x)
    x = keras.layers.Reshape((size, size, config.filters[-1]), name="maps")(x)
    for stage, filters in enumerate(reversed(config.filters)):
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu",
                                         name=f"up{stage}")(x)
    logits = keras.layers.Conv2D(1, 3, padding="same", name="logits")(x)
    return keras.Model(latents, logits, name="decoder")


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class ImageAutoencoder(keras.Model):
    """Encoder and decoder trained by `model.fit` on batches of uint8 images alone (no targets).

    `call(images)` returns the reconstruction (pixels in [0, 1], `[batch, 28, 28, 1]`), the posterior mean's for
    a vae. `train_step` / `test_step` compute `loss_terms` and keep their means as the epoch's metrics.
    """

    def __init__(self, encoder, decoder, noise_level=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.noise_level, self.seed = float(noise_level), seed
        self.noise = keras.layers.GaussianNoise(noise_level, seed=seed, name="input_noise") if noise_level else None
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_names}

    loss_names = ("loss",)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def latent_code(self, pixels):
        """The deterministic code of pixels in [0, 1] (a vae's posterior mean)."""
        return self.encoder(pixels)

    def reconstruct(self, pixels):
        return ops.sigmoid(self.decoder(self.latent_code(pixels)))

    def call(self, images, training=False):
        return self.reconstruct(to_float(images))

    def loss_terms(self, images, training):
        """`{"loss": mean squared error}` of the batch (the denoising input in training)."""
        pixels = to_float(images)
        inputs = self.noise(pixels, training=training) if self.noise is not None else pixels
        reconstruction = ops.sigmoid(self.decoder(self.encoder(inputs, training=training), training=training))
        return {"loss": ops.mean(ops.square(reconstruction - pixels))}

    def train_step(self, images):
        with tf.GradientTape() as tape:
            terms = self.loss_terms(images, training=True)
        gradients = tape.gradient(terms["loss"], self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return self._track(terms)

    def test_step(self, images):
        return self._track(self.loss_terms(images, training=False))

    def _track(self, terms):
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder), "noise_level": self.noise_level,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class VariationalAutoencoder(ImageAutoencoder):
    """The vae: `loss_terms` is the negative ELBO in nats per image, `reconstruction` + `kl`, with one
    reparameterized sample of z per image (drawn from the model's seed generator)."""

    loss_names = ("loss", "reconstruction", "kl")

    def __init__(self, encoder, decoder, noise_level=0.0, seed=None, **kwargs):
        super().__init__(encoder, decoder, noise_level=noise_level, seed=seed, **kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def latent_code(self, pixels):
        return self.encoder(pixels)[0]

    def loss_terms(self, images, training):
        pixels = to_float(images)
        mean, log_variance = self.encoder(pixels, training=training)
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        reconstruction, kl = elbo_terms(self.decoder, pixels, mean, log_variance, noise, training=training)
        return {"loss": ops.mean(reconstruction + kl), "reconstruction": ops.mean(reconstruction),
                "kl": ops.mean(kl)}


def elbo_terms(decoder, pixels, mean, log_variance, noise, training=False):
    """Per-image `(reconstruction, kl)` in nats for one latent sample `mean + exp(log_variance / 2) * noise`:
    the Bernoulli cross-entropy summed over the pixels and the closed-form KL to N(0, I)."""
    latents = mean + ops.exp(0.5 * log_variance) * noise
    logits = decoder(latents, training=training)
    cross_entropy = ops.binary_crossentropy(pixels, logits, from_logits=True)
    reconstruction = ops.sum(ops.reshape(cross_entropy, (ops.shape(pixels)[0], -1)), axis=-1)
    return reconstruction, gaussian_kl(mean, log_variance)


# === Tasks ===


class AutoencoderTask(GenerativeTask):
    name = "autoencoder"
    variational = False
    model_class = ImageAutoencoder

    def build_data(self, config, source):
        data = super().build_data(config, source)
        data.info["latent_dim"] = config.latent_dim
        return data

    # === Model ===

    def build_model(self, config, data):
        model = self.model_class(build_encoder(config, self.variational), build_decoder(config),
                                 noise_level=config.noise_level, seed=config.seed, name=self.name)
        model(np.zeros((1, 28, 28), np.uint8))  # builds the weights before compile and BackupAndRestore
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)))
        return model

    def custom_objects(self):
        return {keras.saving.get_registered_name(cls): cls for cls in (ImageAutoencoder, VariationalAutoencoder)}

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
            "reconstructions.png": generative.grid_figure(
                np.concatenate(rows),
                f"Test images and their reconstructions (MSE {metrics['test_reconstruction_mse']:.4f})",
                columns=len(shown), row_labels=labels_of_rows),
            "most_anomalous.png": generative.grid_figure(
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
            report.figures["latent_space.png"] = latent_figures.latent_scatter(latents, labels, class_names)
        return report


class VAETask(AutoencoderTask):
    name = "vae"
    variational = True
    model_class = VariationalAutoencoder

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

        endpoints["generate"] = generative.generate_endpoint(sample)
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
        report.figures["samples.png"] = generative.samples_figure(
            serving, config, f"generate(seed=0, count={config.num_samples})")
        report.figures["interpolations.png"] = latent_figures.interpolations(serving, images, labels)
        if config.latent_dim == 2:
            report.figures["latent_manifold.png"] = latent_figures.latent_manifold(serving)
        return report


# === Evaluation helpers ===


def prior_sample(seed, count, latent_dim):
    """`count` latent codes from N(0, I), a function of the `[2]` seed only."""
    return tf.random.stateless_normal(tf.stack([count, latent_dim]), seed=seed)


def add_noise(images, noise_level, seed):
    """uint8 images with Gaussian noise of `noise_level` (pixels in [0, 1]) added, clipped, rounded (seeded)."""
    noise = np.random.default_rng(seed).normal(0.0, noise_level, size=images.shape)
    return np.clip(np.round(images + 255.0 * noise), 0, 255).astype(np.uint8)


def _mse(images, targets):
    """Mean squared difference of two uint8 image arrays, on [0, 1] pixels."""
    return float(np.mean(np.square(images.astype(np.float64) / 255 - targets.astype(np.float64) / 255)))
