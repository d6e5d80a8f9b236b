"""Generative configs and presets: autoencoder, vae, gan, diffusion. No TensorFlow here: `dlsuite list` reads this
module."""

import dataclasses
import typing

from apps.vision.classification.config import DATASETS
from shared.checks import check_choice, check_range, check_sizes
from shared.config import FitConfig, OptimizerConfig, SupervisedConfig, TaskSpec


@dataclasses.dataclass(frozen=True)
class GenerativeConfig(FitConfig):
    """What every generative task (autoencoder, vae, gan, diffusion) has: the `model.fit` loop's keys, the images it
    learns, the size of its latent code, and how often the run logs a grid of samples from fixed seeds
    (`plots.SampleGridLogger`). The optimizer's keys come with `SupervisedConfig` (autoencoder, vae) or
    `OptimizerConfig` (diffusion, which averages its weights its own way); the GAN has neither: its two Adam
    optimizers have their own keys."""

    dataset: str = "fashion_mnist"
    latent_dim: int = 16
    sample_every: int = 1  # epochs between the sample grids logged to MLflow; 0: only the final one
    num_samples: int = 64  # images in each grid (from seeds 0..num_samples-1, the same every time)

    def __post_init__(self):
        super().__post_init__()
        check_choice("dataset", self.dataset, DATASETS)
        check_range("latent_dim", self.latent_dim, 1, 1024)
        check_range("sample_every", self.sample_every, 0)
        check_range("num_samples", self.num_samples, 1, 256)


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig(GenerativeConfig, SupervisedConfig):
    """Convolutional autoencoder: strided conv stages down to a dense latent code and transposed conv stages back.
    `noise_level` > 0 makes it denoising: Gaussian noise of that standard deviation (pixels in [0, 1]) is added to
    the inputs in training only, and the clean image is the target."""

    filters: typing.Tuple[int, ...] = (32, 64)
    noise_level: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_sizes("filters", self.filters, "32,64", count=(1, 2),
                    meaning=", one per stride-2 stage (28x28 -> 14x14 -> 7x7)")
        check_range("noise_level", self.noise_level, 0, 1)


@dataclasses.dataclass(frozen=True)
class VAEConfig(AutoencoderConfig):
    """Variational autoencoder: the autoencoder's stages with a Gaussian posterior (mean, log-variance), a
    reparameterized sample, a Bernoulli decoder and the KL term to N(0, I). `elbo_samples` latent samples per
    test image estimate the reported ELBO. `latent_dim=2` adds the latent-space scatter and the decoded manifold."""

    elbo_samples: int = 8

    def __post_init__(self):
        super().__post_init__()
        check_range("elbo_samples", self.elbo_samples, 1, 1000)


def autoencoder_default():
    """All of Fashion-MNIST, a 16-d code, 8 epochs: benchmarks/vision_autoencoders.py (README.md has
    the numbers). No early stopping: the cosine schedule decays the rate to about 0 at the last epoch."""
    return AutoencoderConfig(epochs=8, batch_size=128, learning_rate=2e-3, learning_rate_schedule="cosine",
                             early_stopping_patience=0, validation_fraction=0.05, sample_every=2)


def autoencoder_smoke():
    """4,096 images twice through a tiny network at a constant rate: seconds, and it beats the mean image (one
    epoch of 2,048 on a cosine schedule did not). For CI and trying the pipeline."""
    return dataclasses.replace(autoencoder_default(), epochs=2, max_train_examples=4096, max_test_examples=512,
                               learning_rate=3e-3, learning_rate_schedule="constant", filters=(8, 16), latent_dim=8,
                               sample_every=1, num_samples=16)


def vae_default():
    """All of Fashion-MNIST, a 16-d latent, 8 epochs: benchmarks/vision_autoencoders.py (README.md has
    the numbers). No early stopping: the cosine schedule decays the rate to about 0 at the last epoch."""
    return VAEConfig(epochs=8, batch_size=128, learning_rate=2e-3, learning_rate_schedule="cosine",
                     early_stopping_patience=0, validation_fraction=0.05, sample_every=2)


def vae_smoke():
    """4,096 images twice through a tiny network at a constant rate: seconds, and its reconstructions beat the
    mean image (0.063 against 0.088 MSE on 2,000 test images). For CI and trying the pipeline."""
    return dataclasses.replace(vae_default(), epochs=2, max_train_examples=4096, max_test_examples=512,
                               learning_rate=3e-3, learning_rate_schedule="constant", filters=(8, 16), latent_dim=8,
                               sample_every=1, num_samples=16, elbo_samples=2)


TASKS = {"autoencoder": TaskSpec(
    description="Convolutional (denoising) autoencoder; serves reconstructions + anomaly scores, encode, decode.",
    config_class=AutoencoderConfig, presets={"default": autoencoder_default, "smoke": autoencoder_smoke},
    task_class="apps.vision.generative.tasks.autoencoder:AutoencoderTask",
)}
TASKS["vae"] = TaskSpec(
    description="Convolutional VAE; reports the test ELBO; serves reconstructions, encode, decode, generate(seed).",
    config_class=VAEConfig, presets={"default": vae_default, "smoke": vae_smoke},
    task_class="apps.vision.generative.tasks.vae:VAETask",
)


# === Sampling generators: GAN and diffusion (tasks/gan.py, tasks/diffusion.py) ===


@dataclasses.dataclass(frozen=True)
class SamplerConfig(GenerativeConfig):
    """What the GAN and the diffusion model share: class conditioning, and how `evaluate` scores samples.

    `evaluate` draws `eval_samples` images from the served `generate` and compares them with the test images:
    always in a cheap pixel space (4x4-pooled pixels), and with the features of a trained vision classifier when
    `quality_classifier_run` names its MLflow run (FID, KID, class accuracy: quality.py)."""

    conditional: bool = False  # class-conditional: `generate` takes a class_id
    eval_samples: int = 1000
    quality_classifier_run: typing.Optional[str] = None
    interpolation_steps: int = 8  # images per row of the interpolation figure

    def __post_init__(self):
        super().__post_init__()
        check_range("eval_samples", self.eval_samples, 2, 100_000)
        check_range("interpolation_steps", self.interpolation_steps, 2, 32)


@dataclasses.dataclass(frozen=True)
class GanConfig(SamplerConfig):
    """DCGAN: a generator of transposed convolutions from a normal latent, a convolutional critic. `loss`
    "wgan_gp" (Wasserstein critic with a gradient penalty of weight `gradient_penalty_weight`, `critic_steps` critic
    updates per generator update) or "non_saturating" (the original GAN loss, -log D(G(z)) for the generator).
    Both networks train with Adam(`beta_1`, `beta_2`): `learning_rate` the generator's, `critic_learning_rate`
    the critic's (None: the same), at a constant rate. Conditional: the generator gets a class embedding, the critic
    a projection of it (projection discriminator).

    A `FitConfig`: no optimizer, schedule, clipping, wall-time budget or weight-averaging keys, since neither
    network would use them (`--set optimizer=...` is an unknown key, with `UNKNOWN_KEY_HINTS`' explanation)."""

    UNKNOWN_KEY_HINTS = dict.fromkeys(
        ("optimizer", "weight_decay", "learning_rate_schedule", "warmup_epochs", "max_train_seconds", "clipnorm",
         "ema_momentum"),
        "The GAN trains both networks with Adam(beta_1, beta_2) at a constant rate: tune beta_1, beta_2, "
        "learning_rate and critic_learning_rate instead.")

    loss: str = "wgan_gp"
    latent_dim: int = 64
    generator_filters: typing.Tuple[int, ...] = (128, 64)  # at 7x7 and 14x14, then a transposed conv to 28x28
    critic_filters: typing.Tuple[int, ...] = (64, 128)  # stride-2 convs: 28x28 -> 14x14 -> 7x7
    critic_steps: int = 2
    gradient_penalty_weight: float = 10.0
    critic_learning_rate: typing.Optional[float] = None
    beta_1: float = 0.5
    beta_2: float = 0.9

    def __post_init__(self):
        super().__post_init__()
        check_choice("loss", self.loss, ("wgan_gp", "non_saturating"))
        for name, example in (("generator_filters", "64,32"), ("critic_filters", "32,64")):
            check_sizes(name, getattr(self, name), example, count=(2, 2), meaning=", one per 14x14/7x7 stage")
        check_range("critic_steps", self.critic_steps, 1, 10)
        check_range("gradient_penalty_weight", self.gradient_penalty_weight, 0)
        check_range("critic_learning_rate", self.critic_learning_rate, 0, low_inclusive=False)
        check_range("beta_1", self.beta_1, 0, 1, high_inclusive=False)
        check_range("beta_2", self.beta_2, 0, 1, high_inclusive=False)


@dataclasses.dataclass(frozen=True)
class DiffusionConfig(SamplerConfig, OptimizerConfig):
    """Denoising diffusion: a small U-Net predicts the noise added to an image at a random noise level (DDPM
    training, cosine schedule in continuous time); `generate` runs `sampling_steps` deterministic DDIM steps from
    seeded noise with the exponential moving average (`ema`) of the weights. Conditional: a class embedding joins
    the noise-level embedding; it is dropped with probability `class_dropout` in training, so sampling can use
    classifier-free guidance of strength `guidance_scale` (1: none).

    An `OptimizerConfig`: `ema` (the model's own averaged network, with a warm-up) is its one averaging key; the
    optimizer's `ema_momentum` of the other tasks is not a field here."""

    UNKNOWN_KEY_HINTS = {"ema_momentum": "The diffusion model averages its weights in its own EMA network: "
                                         "--set ema=<momentum in [0, 1)>."}

    filters: typing.Tuple[int, ...] = (32, 64, 96)  # U-Net widths at 28x28, 14x14, 7x7 (two: no 7x7 level)
    blocks_per_level: int = 1
    embedding_dim: int = 64
    sampling_steps: int = 25
    ema: float = 0.999
    class_dropout: float = 0.1
    guidance_scale: float = 2.0
    min_signal_rate: float = 0.02
    max_signal_rate: float = 0.95

    def __post_init__(self):
        super().__post_init__()
        if len(self.filters) not in (2, 3) or any(width < 1 or width % 8 for width in self.filters):
            from shared.errors import ConfigError

            raise ConfigError(
                f"Invalid value for config key filters. Received: filters={self.filters!r}. Expected two or three "
                "multiples of 8, the U-Net widths at 28x28, 14x14 (and 7x7) (group normalization uses groups of 8). "
                "Fix: --set filters=16,32,64."
            )
        check_range("blocks_per_level", self.blocks_per_level, 1, 4)
        check_range("embedding_dim", self.embedding_dim, 8, 1024)
        check_range("sampling_steps", self.sampling_steps, 1, 1000)
        check_range("ema", self.ema, 0, 1, high_inclusive=False)
        check_range("class_dropout", self.class_dropout, 0, 1, high_inclusive=False)
        check_range("guidance_scale", self.guidance_scale, 0)
        check_range("min_signal_rate", self.min_signal_rate, 0, 1, low_inclusive=False, high_inclusive=False)
        check_range("max_signal_rate", self.max_signal_rate, self.min_signal_rate, 1, low_inclusive=False,
                    high_inclusive=False)


def gan_default():
    """All of Fashion-MNIST, WGAN-GP, small networks, 2 epochs of batches of 64: benchmarks/vision_generative.py
    (numbers in README.md). Sized for 2 shared CPU cores: the 1,782 updates took 775 s of training at a
    load average of about 26 (FID 17.7 against 0.17 for real images)."""
    return GanConfig(epochs=2, batch_size=64, learning_rate=2e-4, early_stopping_patience=0,
                     validation_fraction=0.05, sample_every=1, generator_filters=(64, 32), critic_filters=(32, 64))


def gan_smoke():
    """A small slice, one epoch, tiny networks: seconds. For CI and trying the pipeline."""
    return dataclasses.replace(gan_default(), epochs=1, max_train_examples=1024, max_test_examples=256,
                               generator_filters=(16, 8), critic_filters=(8, 16), latent_dim=8, num_samples=16,
                               eval_samples=64, interpolation_steps=4)


def diffusion_default():
    """All of Fashion-MNIST, class-conditional, six epochs of a small U-Net (5,346 updates), 10 DDIM steps with
    guidance 3: benchmarks/vision_generative.py (numbers in README.md). Sized for 2 CPU cores, where one
    training step of 64 images takes 0.35 s alone and 0.5-0.8 s beside other jobs (35-50 minutes), and sampling
    costs two U-Net passes per step."""
    return DiffusionConfig(epochs=6, batch_size=64, optimizer="adamw", learning_rate=2e-3, weight_decay=1e-4,
                           learning_rate_schedule="cosine", early_stopping_patience=0, validation_fraction=0.05,
                           conditional=True, sample_every=1, filters=(16, 32, 64), embedding_dim=32,
                           sampling_steps=10, guidance_scale=3.0, eval_samples=2000)


def diffusion_smoke():
    """A small slice, one epoch, a tiny U-Net, 4 sampling steps: seconds. For CI and trying the pipeline."""
    return dataclasses.replace(diffusion_default(), epochs=1, max_train_examples=1024, max_test_examples=256,
                               filters=(8, 16), embedding_dim=16, sampling_steps=4, num_samples=20,
                               eval_samples=64, interpolation_steps=4, ema=0.9)


TASKS["gan"] = TaskSpec(
    description="DCGAN, WGAN-GP (or non-saturating), optionally class-conditional; serves generate(seed, count).",
    config_class=GanConfig, presets={"default": gan_default, "smoke": gan_smoke},
    task_class="apps.vision.generative.tasks.gan:GanTask",
)
TASKS["diffusion"] = TaskSpec(
    description="Small U-Net diffusion model (DDPM training, DDIM sampling, EMA); serves generate(seed, count).",
    config_class=DiffusionConfig, presets={"default": diffusion_default, "smoke": diffusion_smoke},
    task_class="apps.vision.generative.tasks.diffusion:DiffusionTask",
)
