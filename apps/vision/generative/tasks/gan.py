"""Task `gan`: a DCGAN of Fashion-MNIST/MNIST, WGAN-GP by default (`../gan.py` has the model and the losses),
trained by `model.fit` with two Adam optimizers and served by `SamplerTask`'s `generate` and `interpolate`."""

import keras

from apps.vision.generative.gan import GAN
from apps.vision.generative.models import build_critic, build_generator
from apps.vision.generative.tasks.base import SamplerTask


class GanTask(SamplerTask):
    name = "gan"

    def latent_shape(self, config):
        return (config.latent_dim,)

    def build_model(self, config, data):
        num_classes = self.num_classes(config, data.info)
        model = GAN(build_generator(config.latent_dim, config.generator_filters, num_classes),
                    build_critic(config.critic_filters, num_classes), config.latent_dim,
                    loss=config.loss, critic_steps=config.critic_steps,
                    gradient_penalty_weight=config.gradient_penalty_weight, conditional=bool(num_classes),
                    seed=config.seed, name="gan")
        model.compile(
            # Named, so their variables' paths do not depend on how many optimizers the process made before.
            generator_optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1,
                                                      beta_2=config.beta_2, name="generator_adam"),
            critic_optimizer=keras.optimizers.Adam(config.critic_learning_rate or config.learning_rate,
                                                   beta_1=config.beta_1, beta_2=config.beta_2, name="critic_adam"))
        model(self.model_example(data))  # builds the model (BackupAndRestore needs a built model)
        return model
