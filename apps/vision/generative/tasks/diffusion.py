"""Task `diffusion`: a small U-Net denoising diffusion model of Fashion-MNIST/MNIST (`../diffusion.py` has the
model: DDPM training, DDIM sampling, the EMA network), served by `SamplerTask`'s `generate` and `interpolate`."""

from apps.vision.generative.diffusion import Diffusion
from apps.vision.generative.models import build_unet
from apps.vision.generative.tasks.base import SamplerTask
from shared import data as shared_data
from shared.optimizers import build_optimizer


class DiffusionTask(SamplerTask):
    name = "diffusion"
    # Trains under any precision: its train_step scales the loss (mixed_float16), the U-Net's noise embedding and
    # its output stay float32, so the ε-loss, the EMA update and the DDIM sampler's schedule are float32.
    precision_refusal = None

    def latent_shape(self, config):
        return (28, 28, 1)

    def build_model(self, config, data):
        num_classes = self.num_classes(config, data.info)
        network = build_unet(config.filters, config.blocks_per_level, config.embedding_dim, num_classes)
        ema_network = build_unet(config.filters, config.blocks_per_level, config.embedding_dim, num_classes,
                                 name="ema_unet")
        ema_network.set_weights(network.get_weights())
        model = Diffusion(network, ema_network, sampling_steps=config.sampling_steps, ema=config.ema,
                          min_signal_rate=config.min_signal_rate, max_signal_rate=config.max_signal_rate,
                          num_classes=num_classes, class_dropout=config.class_dropout,
                          guidance_scale=config.guidance_scale, seed=config.seed, name="diffusion")
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)))
        model(self.model_example(data))  # builds the model (BackupAndRestore needs a built model)
        return model
