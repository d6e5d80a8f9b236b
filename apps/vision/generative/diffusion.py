"""The model of task `diffusion` (`tasks/diffusion.py`): a small U-Net denoising diffusion model of
Fashion-MNIST/MNIST (DDPM training, DDIM sampling).

Noise schedule: continuous time t in [0, 1] with cosine rates, signal = cos(a(t)), noise = sin(a(t)), the angle
a(t) going linearly from acos(max_signal_rate) (t = 0, nearly clean) to acos(min_signal_rate) (t = 1, nearly
pure noise); signal² + noise² = 1.

    training (`Diffusion.train_step`, one batch of uint8 images or `(images, class_ids)`):
      x0 = pixels in [-1, 1]; t ~ U(0, 1); ε ~ N(0, I); x_t = signal(t) x0 + noise(t) ε
      the U-Net predicts ε from (x_t, noise(t)[, class id]); loss = mean squared error (DDPM's ε-objective)
      conditional: the class id is replaced by the "no class" id with probability `class_dropout`
      after each step: EMA weights ← ema · EMA + (1 − ema) · weights (with a warm-up: min(ema, (1+n)/(10+n)))
    sampling (`call`: latents = x_1 ~ N(0, I) from the client's seed; deterministic DDIM, η = 0):
      for t = 1, 1 − 1/S, ..., 1/S (S = `sampling_steps`), with the EMA network:
        ε̂ = network(x_t, noise(t)[, class]); conditional: ε̂ = ε̂_none + w (ε̂_class − ε̂_none) (classifier-free
        guidance, w = `guidance_scale`; both in one batch); x̂0 = clip((x_t − noise(t) ε̂) / signal(t), −1, 1)
        ε̂ ← (x_t − signal(t) x̂0) / noise(t): the noise that agrees with the clipped x̂0
        x_{t−1/S} = signal(t − 1/S) x̂0 + noise(t − 1/S) ε̂
      the images are the last x̂0
    Without the ε̂ update, whatever the clip cut off was put back into x_{t−1/S} as noise at every step. Guidance
    makes ε̂ overshoot, so guided samples drifted to saturated blobs (the classifier called most of them "bag"),
    more so with more steps: 71% class accuracy at 10 steps, 40% at 25, on a model that scores 97% at either
    with the update (README.md).

U-Net (`models.build_unet`): a 3x3 conv, then per level (28x28, 14x14, 7x7; widths `filters`) `blocks_per_level`
residual blocks
(GroupNorm, swish, 3x3 conv, + the embedding projected to the width, GroupNorm, swish, 3x3 conv, + the input),
average-pooling between levels, one block at 7x7, and back up with the skips concatenated; GroupNorm, swish and a
zero-initialized 3x3 conv to ε. The embedding: sinusoids of the noise rate through two dense layers, plus a class
embedding (`num_classes` + 1 rows: the last is "no class").

`call({"latents", "class_ids"})` is the sampler; serving is `sampling.py`'s. `val_loss` is the
ε-loss of the EMA network on the validation images.
"""

import math

import keras
import tensorflow as tf
from keras import ops

from apps.vision.generative.pixels import to_float
from apps.vision.generative.sampling import VALUE_RANGE


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class Diffusion(keras.Model):
    """The U-Net, its EMA copy (what samples) and the schedule; `fit` on uint8 images or `(images, class_ids)`."""

    def __init__(self, network, ema_network, sampling_steps=25, ema=0.999, min_signal_rate=0.02,
                 max_signal_rate=0.95, num_classes=None, class_dropout=0.1, guidance_scale=2.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.network, self.ema_network = network, ema_network
        self.ema_network.trainable = False
        self.sampling_steps, self.ema = int(sampling_steps), float(ema)
        self.min_signal_rate, self.max_signal_rate = float(min_signal_rate), float(max_signal_rate)
        self.num_classes, self.class_dropout = num_classes, float(class_dropout)
        self.guidance_scale, self.seed = float(guidance_scale), seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        optimizer.build(self.network.trainable_variables)  # built now, so BackupAndRestore restores its state

    def get_compile_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]))

    # === The schedule ===

    def rates(self, times):
        """`(signal rates, noise rates)` at diffusion times in [0, 1]."""
        start, end = math.acos(self.max_signal_rate), math.acos(self.min_signal_rate)
        angles = start + ops.cast(times, "float32") * (end - start)
        return ops.cos(angles), ops.sin(angles)

    def _network_inputs(self, noisy, noise_rates, class_ids):
        return [noisy, noise_rates, class_ids] if self.num_classes else [noisy, noise_rates]

    # === Training ===

    def _noise_loss(self, data, network, training):
        images, class_ids = data if self.num_classes else (data, None)
        pixels = to_float(images, VALUE_RANGE)
        batch = ops.shape(pixels)[0]
        noise = keras.random.normal(ops.shape(pixels), seed=self.seed_generator)
        signal_rates, noise_rates = self.rates(keras.random.uniform((batch,), seed=self.seed_generator))
        noisy = signal_rates[:, None, None, None] * pixels + noise_rates[:, None, None, None] * noise
        if self.num_classes and training:
            dropped = keras.random.uniform((batch,), seed=self.seed_generator) < self.class_dropout
            class_ids = ops.where(dropped, self.num_classes, ops.cast(class_ids, "int32"))
        predicted = network(self._network_inputs(noisy, noise_rates, class_ids), training=training)
        return ops.mean(ops.square(predicted - noise))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._noise_loss(data, self.network, training=True)
            scaled = self.optimizer.scale_loss(loss)  # mixed_float16's loss scaling (`apply` unscales); else loss
        variables = self.network.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        steps = ops.cast(self.optimizer.iterations, "float32")
        decay = ops.minimum(self.ema, (1.0 + steps) / (10.0 + steps))
        for weight, average in zip(self.network.weights, self.ema_network.weights):
            average.assign(decay * average + (1.0 - decay) * weight)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        self.loss_tracker.update_state(self._noise_loss(data, self.ema_network, training=False))
        return {"loss": self.loss_tracker.result()}

    # === Sampling ===

    def predict_noise(self, noisy, noise_rates, class_ids):
        """The EMA network's ε̂; with classes and guidance ≠ 1, classifier-free guided (one doubled batch)."""
        if not self.num_classes:
            return self.ema_network([noisy, noise_rates], training=False)
        if self.guidance_scale == 1.0:
            return self.ema_network([noisy, noise_rates, class_ids], training=False)
        none = ops.full_like(class_ids, self.num_classes)
        both = self.ema_network([ops.concatenate([noisy, noisy]), ops.concatenate([noise_rates, noise_rates]),
                                 ops.concatenate([class_ids, none])], training=False)
        conditional, unconditional = ops.split(both, 2)
        return unconditional + self.guidance_scale * (conditional - unconditional)

    def ddim_step(self, noisy, noise, times, next_times):
        """`(x at next_times, x̂0)` from x at `times` and its predicted noise ε̂: deterministic DDIM with x̂0 clipped
        to the pixel range and ε̂ replaced by the noise that agrees with the clipped x̂0."""
        signal_rates, noise_rates = (rate[:, None, None, None] for rate in self.rates(times))
        estimate = ops.clip((noisy - noise_rates * noise) / signal_rates, -1.0, 1.0)
        noise = (noisy - signal_rates * estimate) / noise_rates
        next_signal, next_noise = (rate[:, None, None, None] for rate in self.rates(next_times))
        return next_signal * estimate + next_noise * noise, estimate

    def call(self, inputs, training=False):
        """DDIM from `latents` (x at t = 1) in `sampling_steps` steps: the last x̂0, pixels in [-1, 1]."""
        noisy = ops.cast(inputs["latents"], "float32")
        class_ids = ops.cast(inputs["class_ids"], "int32") if self.num_classes else None
        batch, steps = tf.shape(noisy)[0], self.sampling_steps

        def step(index, noisy, _estimate):
            times = tf.fill([batch], 1.0 - tf.cast(index, tf.float32) / steps)
            noise = self.predict_noise(noisy, self.rates(times)[1], class_ids)
            noisy, estimate = self.ddim_step(noisy, noise, times, times - 1.0 / steps)
            return index + 1, noisy, estimate

        _, _, estimate = tf.while_loop(lambda index, *_: index < steps, step,
                                       (tf.constant(0), noisy, tf.zeros_like(noisy)))
        return estimate

    def get_config(self):
        return {**super().get_config(), "network": keras.saving.serialize_keras_object(self.network),
                "ema_network": keras.saving.serialize_keras_object(self.ema_network),
                "sampling_steps": self.sampling_steps, "ema": self.ema, "min_signal_rate": self.min_signal_rate,
                "max_signal_rate": self.max_signal_rate, "num_classes": self.num_classes,
                "class_dropout": self.class_dropout, "guidance_scale": self.guidance_scale, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        ema_network = keras.saving.deserialize_keras_object(config.pop("ema_network"))
        return cls(network, ema_network, **config)
