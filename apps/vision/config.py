"""Vision configs and presets. No TensorFlow here: `dlsuite list` reads this module."""

import dataclasses
import typing

from apps.vision.photo_config import PHOTO_TASKS, check_test_time_flip
from shared.config import SupervisedConfig, TaskSpec, check_choice, check_range, check_sizes
from shared.optimizers import ACTIVATIONS

DATASETS = ("fashion_mnist", "mnist")


@dataclasses.dataclass(frozen=True)
class ClassificationConfig(SupervisedConfig):
    """Image classification: a CNN of conv stages with batch norm, dropout, L2 and tf.data augmentation."""

    dataset: str = "fashion_mnist"
    filters: typing.Tuple[int, ...] = (32, 64, 128)
    convs_per_stage: typing.Tuple[int, ...] = (1,)  # one count per stage, or a single count for every stage
    pool_last_stage: bool = False  # pooling 7x7 -> 3x3 drops a row and a column; off: flatten 7x7
    dense_units: int = 256
    activation: str = "relu"
    dropout_rate: float = 0.3
    conv_dropout_rate: float = 0.1
    l2: float = 1e-4
    label_smoothing: float = 0.0
    random_flip: typing.Optional[bool] = None  # None: on for fashion_mnist, off for mnist (a mirrored 2 is no digit)
    random_translation: float = 0.1
    random_erasing: bool = False
    # At inference, the mean of the probabilities for the image and for its mirror (a layer of the model);
    # None: whenever training flips.
    test_time_flip: typing.Optional[bool] = None

    @property
    def stage_convs(self):
        """How many convolutions each stage has."""
        counts = self.convs_per_stage
        return counts if len(counts) == len(self.filters) else counts * len(self.filters)

    @property
    def flips(self):
        """Whether training mirrors images: `random_flip`, or by dataset when it is None."""
        return self.random_flip if self.random_flip is not None else self.dataset == "fashion_mnist"

    @property
    def averages_mirror(self):
        """Whether serving averages the image's and its mirror image's probabilities."""
        return self.test_time_flip if self.test_time_flip is not None else self.flips

    def __post_init__(self):
        super().__post_init__()
        check_choice("dataset", self.dataset, DATASETS)
        check_sizes("filters", self.filters, "32,64,128")
        if len(self.convs_per_stage) not in (1, len(self.filters)) or not all(
                1 <= count <= 4 for count in self.convs_per_stage):
            from shared.errors import ConfigError

            raise ConfigError(
                f"Invalid value for config key convs_per_stage. Received: convs_per_stage={self.convs_per_stage!r} "
                f"with filters={self.filters!r}. Expected one count in [1, 4] for every stage, or one per stage "
                f"({len(self.filters)} here). Fix: --set convs_per_stage=2 (two in every stage) or "
                f"--set convs_per_stage={','.join(['1'] + ['2'] * (len(self.filters) - 1))}."
            )
        check_range("dense_units", self.dense_units, 1)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_range("dropout_rate", self.dropout_rate, 0, 1, high_inclusive=False)
        check_range("conv_dropout_rate", self.conv_dropout_rate, 0, 1, high_inclusive=False)
        check_range("l2", self.l2, 0)
        check_range("label_smoothing", self.label_smoothing, 0, 1, high_inclusive=False)
        check_range("random_translation", self.random_translation, 0, 0.5)
        check_test_time_flip(self.test_time_flip, self.flips,
                             f"random_flip={self.random_flip} (dataset={self.dataset})")


@dataclasses.dataclass(frozen=True)
class GenerativeConfig(SupervisedConfig):
    """What every generative task (autoencoder, vae, gan, diffusion) has: the images it learns, the size of its
    latent code, and how often the run logs a grid of samples from fixed seeds (`apps/vision/generative.py`)."""

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
class AutoencoderConfig(GenerativeConfig):
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


def default():
    """All of Fashion-MNIST in under 10 minutes on 2 CPU cores (benchmarks/vision_fashion_mnist.py).

    What the measured runs taught (apps/vision/README.md has the table): with random translations
    the CNN still underfits after 12 epochs (train accuracy = validation accuracy), so regularization
    that slows learning (spatial dropout, translations) costs more than it saves; flattening the last
    7x7 stage beats pooling it to 3x3; one convolution in the 28x28 stage instead of two makes an
    epoch about 1.4x faster for little accuracy; and serving the mean over each image and its mirror
    adds about 0.4 points. 11 epochs take about 460 s on a quiet machine and leave room for the slow
    epochs this VM has (12 took 624 s once, with three epochs of 76-88 s).

    No early stopping: the cosine schedule decays the learning rate to about 0 at the last epoch, so
    the last weights are the ones to keep. Restoring the "best" epoch by a 3,000-image validation
    slice picks noise: one run restored epoch 7 of 11 (93.80% on validation) and scored 93.21% on test.
    """
    return ClassificationConfig(
        epochs=11, batch_size=128, optimizer="adamw", learning_rate=3e-3, weight_decay=1e-4,
        learning_rate_schedule="cosine", warmup_epochs=1, early_stopping_patience=0, l2=0.0,
        conv_dropout_rate=0.0, dropout_rate=0.25, random_translation=0.0, label_smoothing=0.1,
        validation_fraction=0.05, filters=(16, 32, 64), convs_per_stage=(1, 2, 2),
    )


def smoke():
    """A small slice, one epoch, a tiny CNN: seconds. For CI and trying the pipeline."""
    return dataclasses.replace(
        default(), epochs=1, max_train_examples=2048, max_test_examples=512, filters=(8, 16), convs_per_stage=(1, 2),
        dense_units=32, warmup_epochs=0,
    )


def autoencoder_default():
    """All of Fashion-MNIST, a 16-d code, 8 epochs: benchmarks/vision_autoencoders.py (apps/vision/README.md has
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
    """All of Fashion-MNIST, a 16-d latent, 8 epochs: benchmarks/vision_autoencoders.py (apps/vision/README.md has
    the numbers). No early stopping: the cosine schedule decays the rate to about 0 at the last epoch."""
    return VAEConfig(epochs=8, batch_size=128, learning_rate=2e-3, learning_rate_schedule="cosine",
                     early_stopping_patience=0, validation_fraction=0.05, sample_every=2)


def vae_smoke():
    """4,096 images twice through a tiny network at a constant rate: seconds, and its reconstructions beat the
    mean image (0.063 against 0.088 MSE on 2,000 test images). For CI and trying the pipeline."""
    return dataclasses.replace(vae_default(), epochs=2, max_train_examples=4096, max_test_examples=512,
                               learning_rate=3e-3, learning_rate_schedule="constant", filters=(8, 16), latent_dim=8,
                               sample_every=1, num_samples=16, elbo_samples=2)


TASKS = {"classification": TaskSpec(
    description="Fashion-MNIST (or MNIST) 10-class CNN; serves uint8 images [None, 28, 28].",
    config_class=ClassificationConfig, presets={"default": default, "smoke": smoke},
    task_class="apps.vision.app:ClassificationTask",
)}
TASKS["autoencoder"] = TaskSpec(
    description="Convolutional (denoising) autoencoder; serves reconstructions + anomaly scores, encode, decode.",
    config_class=AutoencoderConfig, presets={"default": autoencoder_default, "smoke": autoencoder_smoke},
    task_class="apps.vision.autoencoders:AutoencoderTask",
)
TASKS["vae"] = TaskSpec(
    description="Convolutional VAE; reports the test ELBO; serves reconstructions, encode, decode, generate(seed).",
    config_class=VAEConfig, presets={"default": vae_default, "smoke": vae_smoke},
    task_class="apps.vision.autoencoders:VAETask",
)


# === Sampling generators: GAN and diffusion (apps/vision/gan.py, apps/vision/diffusion.py) ===


@dataclasses.dataclass(frozen=True)
class SamplerConfig(GenerativeConfig):
    """What the GAN and the diffusion model share: class conditioning, and how `evaluate` scores samples.

    `evaluate` draws `eval_samples` images from the served `generate` and compares them with the test images:
    always in a cheap pixel space (4x4-pooled pixels), and with the features of a trained vision classifier when
    `quality_classifier_run` names its MLflow run (FID, KID, class accuracy: apps/vision/quality.py)."""

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
    the critic's (None: the same). Conditional: the generator gets a class embedding, the critic a projection
    of it (projection discriminator)."""

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
        if (self.optimizer != "adam" or self.learning_rate_schedule != "constant" or self.max_train_seconds
                or self.clipnorm or self.ema_momentum):
            from shared.errors import ConfigError

            raise ConfigError(
                f"Unsupported optimizer for the GAN. Received: optimizer={self.optimizer!r}, "
                f"learning_rate_schedule={self.learning_rate_schedule!r}, max_train_seconds={self.max_train_seconds}, "
                f"clipnorm={self.clipnorm}, ema_momentum={self.ema_momentum}. Expected optimizer='adam' with a "
                "'constant' learning rate, no wall-time budget, no clipping and no weight averaging: both networks "
                "train with Adam(beta_1, beta_2). Fix: --set optimizer=adam --set learning_rate_schedule=constant, and "
                "leave max_train_seconds, clipnorm and ema_momentum unset (tune beta_1, beta_2, learning_rate, "
                "critic_learning_rate)."
            )


@dataclasses.dataclass(frozen=True)
class DiffusionConfig(SamplerConfig):
    """Denoising diffusion: a small U-Net predicts the noise added to an image at a random noise level (DDPM
    training, cosine schedule in continuous time); `generate` runs `sampling_steps` deterministic DDIM steps from
    seeded noise with the exponential moving average (`ema`) of the weights. Conditional: a class embedding joins
    the noise-level embedding; it is dropped with probability `class_dropout` in training, so sampling can use
    classifier-free guidance of strength `guidance_scale` (1: none)."""

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
    (numbers in apps/vision/README.md). Sized for 2 shared CPU cores: the 1,782 updates took 775 s of training at a
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
    guidance 3: benchmarks/vision_generative.py (numbers in apps/vision/README.md). Sized for 2 CPU cores, where one
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
    task_class="apps.vision.gan:GanTask",
)
TASKS["diffusion"] = TaskSpec(
    description="Small U-Net diffusion model (DDPM training, DDIM sampling, EMA); serves generate(seed, count).",
    config_class=DiffusionConfig, presets={"default": diffusion_default, "smoke": diffusion_smoke},
    task_class="apps.vision.diffusion:DiffusionTask",
)


# === Photographs: detection and segmentation (apps/vision/photo_config.py), listed last ===

TASKS.update(PHOTO_TASKS)
