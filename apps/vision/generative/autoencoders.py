"""The models of tasks `autoencoder` and `vae` (`tasks/autoencoder.py`, `tasks/vae.py`): convolutional
autoencoders of Fashion-MNIST/MNIST, served on raw uint8 images.

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
`sampling.generate_endpoint`) and `elbo` (images, seed -> per-image `elbo`, `reconstruction`
and `kl` in nats, averaged over `elbo_samples` seeded latent samples), which `evaluate` reports on the test set.
"""


import keras
import tensorflow as tf
from keras import ops

from apps.vision.generative.pixels import to_float
from shared.losses import gaussian_kl


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
