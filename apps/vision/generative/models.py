"""The generative networks, functional Keras models built from explicit arguments (the tasks pass their config's
fields); the models that train them are `autoencoders.py`, `gan.py` and `diffusion.py`.

    build_encoder(latent_dim, filters, variational) / build_decoder(latent_dim, filters)   the autoencoders'
    build_generator(latent_dim, filters, num_classes) / build_critic(filters, num_classes)  the GAN's
    build_unet(filters, blocks_per_level, embedding_dim, num_classes)                       diffusion's noise model
"""

import keras

from apps.vision.generative.layers import NoiseEmbedding


# === Autoencoders ===


def build_encoder(latent_dim, filters, variational=False):
    """Pixels `[batch, 28, 28, 1]` in [0, 1] -> the latent code `[batch, latent_dim]` (autoencoder) or
    `[mean, log_variance]` (`variational`): one stride-2 Conv2D of `filters[i]` per stage, a dense layer."""
    pixels = keras.Input((28, 28, 1), name="pixels")
    x = pixels
    for stage, stage_filters in enumerate(filters):
        x = keras.layers.Conv2D(stage_filters, 3, strides=2, padding="same", activation="relu", name=f"down{stage}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(max(64, 4 * latent_dim), activation="relu", name="hidden")(x)
    if not variational:
        return keras.Model(pixels, keras.layers.Dense(latent_dim, name="latent")(x), name="encoder")
    mean = keras.layers.Dense(latent_dim, name="mean")(x)
    log_variance = keras.layers.Dense(latent_dim, name="log_variance")(x)
    return keras.Model(pixels, [mean, log_variance], name="encoder")


def build_decoder(latent_dim, filters):
    """A latent code `[batch, latent_dim]` -> pixel logits `[batch, 28, 28, 1]`: the encoder's stages mirrored
    (one stride-2 Conv2DTranspose of `filters[i]` per stage, from the last)."""
    size = 28 // 2 ** len(filters)
    latents = keras.Input((latent_dim,), name="latents")
    x = keras.layers.Dense(max(64, 4 * latent_dim), activation="relu", name="hidden")(latents)
    x = keras.layers.Dense(size * size * filters[-1], activation="relu", name="expand")(x)
    x = keras.layers.Reshape((size, size, filters[-1]), name="maps")(x)
    for stage, stage_filters in enumerate(reversed(filters)):
        x = keras.layers.Conv2DTranspose(stage_filters, 3, strides=2, padding="same", activation="relu",
                                         name=f"up{stage}")(x)
    logits = keras.layers.Conv2D(1, 3, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(latents, logits, name="decoder")


# === GAN ===


def build_generator(latent_dim, filters, num_classes=None):
    """Latents `[batch, latent_dim]` (and class ids when `num_classes`) -> pixels in [-1, 1] `[batch, 28, 28, 1]`:
    7x7 maps of `filters[0]`, a transposed conv to 14x14 of `filters[1]`, one to 28x28 (see gan.py)."""
    latents = keras.Input((latent_dim,), name="latents")
    inputs, x = [latents], latents
    if num_classes:
        class_ids = keras.Input((), dtype="int32", name="class_ids")
        inputs.append(class_ids)
        embedded = keras.layers.Embedding(num_classes, latent_dim, name="class_embedding")(class_ids)
        x = keras.layers.Concatenate(name="latents_and_class")([latents, embedded])
    first, second = filters
    x = keras.layers.Dense(7 * 7 * first, use_bias=False, name="project")(x)
    x = keras.layers.Reshape((7, 7, first), name="to_maps")(x)
    x = keras.layers.ReLU(name="project_relu")(keras.layers.BatchNormalization(name="project_bn")(x))
    x = keras.layers.Conv2DTranspose(second, 4, strides=2, padding="same", use_bias=False, name="up14")(x)
    x = keras.layers.ReLU(name="up14_relu")(keras.layers.BatchNormalization(name="up14_bn")(x))
    pixels = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh", dtype="float32",
                                            name="up28")(x)
    return keras.Model(inputs, pixels, name="generator")


def build_critic(filters, num_classes=None):
    """Pixels in [-1, 1] (and class ids when `num_classes`: a projection discriminator) -> a score: stride-2
    convs of `filters[i]` with LeakyReLU, no batch norm (the gradient penalty is per image)."""
    pixels = keras.Input((28, 28, 1), name="pixels")
    inputs, x = [pixels], pixels
    for stage, stage_filters in enumerate(filters):
        x = keras.layers.Conv2D(stage_filters, 4, strides=2, padding="same", name=f"down{stage}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{stage}_lrelu")(x)
    features = keras.layers.Flatten(name="flatten")(x)
    score = keras.layers.Dense(1, dtype="float32", name="score")(features)
    if num_classes:
        class_ids = keras.Input((), dtype="int32", name="class_ids")
        inputs.append(class_ids)
        embedded = keras.layers.Embedding(num_classes, features.shape[-1], name="class_projection")(class_ids)
        projection = keras.layers.Dot(axes=-1, name="projection")([embedded, features])
        score = keras.layers.Add(name="conditional_score")([score, projection])
    return keras.Model(inputs, score, name="critic")


# === Diffusion ===


def unet_block(x, embedding, width, name):
    shortcut = x if x.shape[-1] == width else keras.layers.Conv2D(width, 1, name=f"{name}_shortcut")(x)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(8, name=f"{name}_norm1")(x))
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(h)
    shift = keras.layers.Reshape((1, 1, width))(keras.layers.Dense(width, name=f"{name}_embedding")(embedding))
    h = keras.layers.Add(name=f"{name}_condition")([h, shift])
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(8, name=f"{name}_norm2")(h))
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(h)
    return keras.layers.Add(name=f"{name}_residual")([shortcut, h])


def build_unet(filters, blocks_per_level, embedding_dim, num_classes=None, name="unet"):
    """(noisy pixels [28, 28, 1], noise rates [], class ids [] if `num_classes`) -> predicted noise [28, 28, 1]:
    `blocks_per_level` residual blocks per level of width `filters[i]`, conditioned on an `embedding_dim`
    embedding of the noise rate (and class); see diffusion.py."""
    noisy = keras.Input((28, 28, 1), name="noisy_pixels")
    rates = keras.Input((), name="noise_rates")
    inputs = [noisy, rates]
    dim = embedding_dim
    # float32 under any precision policy: a noise rate in bfloat16 (8-bit mantissa) times frequencies up to
    # 1,000 would give meaningless angles; the sinusoids themselves are fine in 16 bits for the dense layers.
    embedding = NoiseEmbedding(dim, dtype="float32", name="noise_embedding")(rates)
    embedding = keras.layers.Dense(dim * 2, activation="swish", name="embedding_dense1")(embedding)
    embedding = keras.layers.Dense(dim * 2, name="embedding_dense2")(embedding)
    if num_classes:
        class_ids = keras.Input((), dtype="int32", name="class_ids")
        inputs.append(class_ids)
        classes = keras.layers.Embedding(num_classes + 1, dim * 2, name="class_embedding")(class_ids)
        embedding = keras.layers.Add(name="noise_and_class")([embedding, classes])
    x = keras.layers.Conv2D(filters[0], 3, padding="same", name="stem")(noisy)
    skips = []
    for level, width in enumerate(filters):
        for block in range(blocks_per_level):
            x = unet_block(x, embedding, width, f"down{level}_{block}")
            skips.append(x)
        if level < len(filters) - 1:
            x = keras.layers.AveragePooling2D(2, name=f"pool{level}")(x)
    x = unet_block(x, embedding, filters[-1], "middle")
    for level in reversed(range(len(filters))):
        for block in range(blocks_per_level):
            x = keras.layers.Concatenate(name=f"skip{level}_{block}")([x, skips.pop()])
            x = unet_block(x, embedding, filters[level], f"up{level}_{block}")
        if level > 0:
            x = keras.layers.UpSampling2D(2, name=f"upsample{level}")(x)
    x = keras.layers.Activation("swish")(keras.layers.GroupNormalization(8, name="out_norm")(x))
    noise = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer="zeros", dtype="float32", name="noise")(x)
    return keras.Model(inputs, noise, name=name)
