"""The model of task `gan` (`tasks/gan.py`): a DCGAN on Fashion-MNIST/MNIST, WGAN-GP by default, trained by
`model.fit` with two optimizers.

    generator (`models.build_generator`):
               z ~ N(0, I) [latent_dim] (+ a class embedding, conditional) -> Dense to 7x7 x filters[0], BN, ReLU
               -> Conv2DTranspose(filters[1], 4, strides 2) BN ReLU (14x14) -> Conv2DTranspose(1, 4, strides 2), tanh
    critic (`models.build_critic`):
               pixels in [-1, 1] -> Conv2D(filters[0], 4, strides 2) LeakyReLU(0.2) (14x14)
               -> Conv2D(filters[1], 4, strides 2) LeakyReLU(0.2) (7x7) -> Flatten -> Dense(1): a score
               (conditional: + <embedding(class), features>, the projection discriminator); no batch norm, so the
               gradient penalty is per image

`GAN.train_step` (one batch of uint8 images, or `(images, class_ids)`): `critic_steps` critic updates on the
batch, each with fresh latents, then one generator update. Losses:
- "wgan_gp": critic E[D(fake)] - E[D(real)] + λ E[(‖∇D(x̂)‖ - 1)²] on random interpolates x̂ of real and fake
  images (λ = `gradient_penalty_weight`); generator -E[D(fake)]. `loss` (train and val) is the critic's estimate of
  the Wasserstein distance E[D(real)] - E[D(fake)]: lower is closer.
- "non_saturating": critic softplus(-D(real)) + softplus(D(fake)) (the logistic loss); generator
  softplus(-D(fake)) = -log sigmoid(D(G(z))). `loss` is the critic's loss.

Two Adam optimizers, one per network. `compile` BUILDS both (`optimizer.build(variables)`): BackupAndRestore
restores optimizer variables only into optimizers that already have them, so an unbuilt optimizer would silently
restart from zero moments after a resume (tests/vision/test_gan.py kills a run and checks both). `fit` is the
contract's `model.fit`: early stopping, BackupAndRestore, the NaN guard and MLflow logging work unchanged.

`call({"latents", "class_ids"})` is the generator (pixels in [-1, 1]); serving is `sampling.py`'s.
"""

import keras
import tensorflow as tf
from keras import ops

from apps.vision.generative.pixels import to_float
from apps.vision.generative.sampling import VALUE_RANGE


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class GAN(keras.Model):
    """Generator and critic; `fit` on batches of uint8 images (or `(images, class_ids)` when conditional)."""

    LOSSES = ("wgan_gp", "non_saturating")

    def __init__(self, generator, critic, latent_dim, loss="wgan_gp", critic_steps=2, gradient_penalty_weight=10.0,
                 conditional=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        if loss not in self.LOSSES:
            raise ValueError(f"Unknown GAN loss. Received: loss={loss!r}. Expected one of: {self.LOSSES}.")
        self.generator, self.critic = generator, critic
        self.latent_dim, self.loss_name, self.critic_steps = int(latent_dim), loss, int(critic_steps)
        self.gradient_penalty_weight, self.conditional, self.seed = float(gradient_penalty_weight), conditional, seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="latent_seed")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "critic_loss", "generator_loss", "gradient_penalty")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, generator_optimizer, critic_optimizer, **kwargs):
        """Both optimizers are built here, before `fit`: BackupAndRestore can then restore their moments and step
        counters on resume (it loads optimizer variables only into built optimizers)."""
        super().compile(optimizer=generator_optimizer, **kwargs)
        self.generator_optimizer, self.critic_optimizer = generator_optimizer, critic_optimizer
        generator_optimizer.build(self.generator.trainable_variables)
        critic_optimizer.build(self.critic.trainable_variables)

    def get_compile_config(self):
        return {"generator_optimizer": keras.saving.serialize_keras_object(self.generator_optimizer),
                "critic_optimizer": keras.saving.serialize_keras_object(self.critic_optimizer)}

    def compile_from_config(self, config):
        self.compile(generator_optimizer=keras.saving.deserialize_keras_object(config["generator_optimizer"]),
                     critic_optimizer=keras.saving.deserialize_keras_object(config["critic_optimizer"]))

    def call(self, inputs, training=False):
        return self.generator(self._inputs(inputs["latents"], inputs.get("class_ids")), training=training)

    def _inputs(self, first, class_ids):
        return [first, class_ids] if self.conditional else first

    def _score(self, pixels, class_ids, training=True):
        return self.critic(self._inputs(pixels, class_ids), training=training)

    def _fake(self, batch, class_ids, training=True):
        latents = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        return self.generator(self._inputs(latents, class_ids), training=training)

    def _split(self, data):
        images, class_ids = data if self.conditional else (data, None)
        return to_float(images, VALUE_RANGE), class_ids

    def gradient_penalty(self, real, fake, class_ids):
        """E[(‖∇D(x̂)‖ - 1)²] at x̂ = real + u (fake - real), u ~ U(0, 1) per image."""
        mix = keras.random.uniform((ops.shape(real)[0], 1, 1, 1), seed=self.seed_generator)
        interpolates = real + mix * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(interpolates)
            scores = self._score(interpolates, class_ids)
        gradients = tape.gradient(scores, interpolates)
        norms = ops.sqrt(ops.sum(ops.square(gradients), axis=[1, 2, 3]) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))

    def critic_terms(self, real, class_ids, training=True):
        fake = self._fake(ops.shape(real)[0], class_ids, training=training)
        real_scores, fake_scores = self._score(real, class_ids, training), self._score(fake, class_ids, training)
        if self.loss_name == "wgan_gp":
            distance = ops.mean(real_scores) - ops.mean(fake_scores)
            penalty = self.gradient_penalty(real, fake, class_ids) if training else ops.zeros(())
            return {"loss": distance, "critic_loss": -distance + self.gradient_penalty_weight * penalty,
                    "gradient_penalty": penalty}
        critic_loss = ops.mean(ops.softplus(-real_scores)) + ops.mean(ops.softplus(fake_scores))
        return {"loss": critic_loss, "critic_loss": critic_loss}

    def train_step(self, data):
        real, class_ids = self._split(data)
        batch = ops.shape(real)[0]
        for _ in range(self.critic_steps):
            with tf.GradientTape() as tape:
                terms = self.critic_terms(real, class_ids)
            gradients = tape.gradient(terms["critic_loss"], self.critic.trainable_variables)
            self.critic_optimizer.apply(gradients, self.critic.trainable_variables)
        with tf.GradientTape() as tape:
            scores = self._score(self._fake(batch, class_ids), class_ids)
            generator_loss = (-ops.mean(scores) if self.loss_name == "wgan_gp"
                              else ops.mean(ops.softplus(-scores)))
        gradients = tape.gradient(generator_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(gradients, self.generator.trainable_variables)
        return self._track({**terms, "generator_loss": generator_loss})

    def test_step(self, data):
        real, class_ids = self._split(data)
        terms = self.critic_terms(real, class_ids, training=False)
        self.trackers["loss"].update_state(terms["loss"])
        return {"loss": self.trackers["loss"].result()}

    def _track(self, terms):
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in terms}

    def get_config(self):
        return {**super().get_config(), "generator": keras.saving.serialize_keras_object(self.generator),
                "critic": keras.saving.serialize_keras_object(self.critic), "latent_dim": self.latent_dim,
                "loss": self.loss_name, "critic_steps": self.critic_steps,
                "gradient_penalty_weight": self.gradient_penalty_weight, "conditional": self.conditional,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(config.pop("generator"))
        critic = keras.saving.deserialize_keras_object(config.pop("critic"))
        return cls(generator, critic, **config)
