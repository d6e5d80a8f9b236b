"""Harness cases (`tests.harness.TaskCase`) of the generative vision tasks, on the tiny IDX folder of
`tests.tiny_data` (64 training and 32 test images, one bright band per class)."""

import gzip

from shared.errors import ConfigError, DataError
from tests.harness import BadInput, TaskCase
from tests.tiny_data import make_idx_folder

# === autoencoder and vae ===


def _not_idx_images(folder):
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"%PDF-1.4 not an IDX file"))
    return folder


_TINY_NETWORK = ("batch_size=16", "filters=4,8", "latent_dim=2", "num_samples=8")

AUTOENCODER = TaskCase(
    make_data=make_idx_folder,
    # noise_level > 0: the denoising variant and its extra metrics; latent_dim=2: the latent scatter.
    overrides=(*_TINY_NETWORK, "noise_level=0.2"),
    metrics=("test_reconstruction_mse", "test_reconstruction_mse_uint8", "test_denoising_mse",
             "test_noisy_input_mse"),
    bad_inputs=(
        BadInput(DataError, r"No fashion_mnist data found\. Received: --data-dir .*empty",
                 break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
        BadInput(ConfigError, r"Invalid value for config key noise_level\. Received: noise_level=1\.5",
                 overrides=("noise_level=1.5",)),
        BadInput(ConfigError, r"Invalid value for config key filters\. Received: filters=\(8, 16, 32\)\. "
                              r"Expected one or two positive integers", overrides=("filters=8,16,32",)),
        BadInput(ConfigError, r"Received: dataset='cifar10'\. Expected one of: fashion_mnist, mnist",
                 overrides=("dataset=cifar10",)),
    ),
)

VAE = TaskCase(
    make_data=make_idx_folder,
    overrides=_TINY_NETWORK,
    metrics=("test_elbo", "test_reconstruction_nats", "test_kl_nats", "test_reconstruction_mse"),
    bad_inputs=(
        BadInput(DataError, r"Not an IDX file of uint8 with 3 dimensions: .*t10k-images-idx3-ubyte\.gz",
                 break_data=_not_idx_images),
        BadInput(ConfigError, r"Invalid value for config key latent_dim\. Received: latent_dim=0",
                 overrides=("latent_dim=0",)),
        BadInput(ConfigError, r"Invalid value for config key elbo_samples\. Received: elbo_samples=0",
                 overrides=("elbo_samples=0",)),
        BadInput(ConfigError, r"Invalid value for config key sample_every\. Received: sample_every=-1",
                 overrides=("sample_every=-1",)),
    ),
)

# === gan and diffusion (GEN-B) ===

GAN = TaskCase(
    make_data=make_idx_folder,
    # Conditional WGAN-GP: both networks' class inputs, the gradient penalty and the class_id signature input.
    overrides=("batch_size=16", "conditional=true", "num_samples=10", "eval_samples=40"),
    metrics=("test_pixel_fid", "test_pixel_kid", "test_sample_seconds"),
    bad_inputs=(
        BadInput(ConfigError, r"Invalid value for config key loss\. Received: loss='hinge'\. "
                              r"Expected one of: wgan_gp, non_saturating", overrides=("loss=hinge",)),
        BadInput(ConfigError, r"Invalid value for config key critic_filters\. Received: critic_filters=\(8,\)",
                 overrides=("critic_filters=8",)),
        # The GAN's config has no optimizer keys (a FitConfig): the unknown key says why and what to tune.
        BadInput(ConfigError, r"Unknown config key 'optimizer' \(from --set\)\. .*The GAN trains both networks with "
                              r"Adam\(beta_1, beta_2\) at a constant rate", overrides=("optimizer=sgd",)),
        BadInput(ConfigError, r"Unknown config key 'max_train_seconds' .*tune beta_1, beta_2, learning_rate",
                 overrides=("max_train_seconds=60",)),
        BadInput(ConfigError, r"Unknown config key 'ema_momentum' .*The GAN trains both networks with Adam",
                 overrides=("ema_momentum=0.99",)),
        BadInput(DataError, r"No fashion_mnist data found\. Received: --data-dir .*empty",
                 break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
    ),
)

DIFFUSION = TaskCase(
    make_data=make_idx_folder,
    overrides=("batch_size=16", "num_samples=10", "eval_samples=20", "sampling_steps=2"),
    metrics=("test_pixel_fid", "test_pixel_kid", "test_sample_seconds"),
    bad_inputs=(
        BadInput(ConfigError, r"Invalid value for config key filters\. Received: filters=\(8, 12, 16\)\. "
                              r"Expected two or three multiples of 8", overrides=("filters=8,12,16",)),
        BadInput(ConfigError, r"Invalid value for config key sampling_steps\. Received: sampling_steps=0",
                 overrides=("sampling_steps=0",)),
        BadInput(ConfigError, r"Invalid value for config key ema\. Received: ema=1\.0", overrides=("ema=1.0",)),
        BadInput(ConfigError, r"Unknown config key 'ema_momentum' .*The diffusion model averages its weights in its "
                              r"own EMA network: --set ema=", overrides=("ema_momentum=0.99",)),
    ),
)
