"""Optimizers, losses and activations selectable by name.

The name tables are plain data so configs can validate names without importing
TensorFlow; the factories import Keras when called.
"""

import re

OPTIMIZERS = {
    "sgd": "SGD",  # with momentum=0.9 (Nesterov)
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
}

LOSSES = {
    "mse": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "huber": "Huber",
    "hinge": "Hinge",
    "categorical_hinge": "CategoricalHinge",
    "kl_divergence": "KLDivergence",
    "binary_crossentropy": "BinaryCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "triplet": None,  # shared.losses.TripletLoss
}

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax", "swish", "gelu", "linear")


def get_optimizer(name, learning_rate, weight_decay=0.0, momentum=0.9, clipnorm=None, label=None, ema_momentum=None):
    """Return a Keras optimizer. `learning_rate` may be a float or a schedule; `label`: the optimizer's name;
    `ema_momentum`: keep an exponential moving average of the weights with this momentum (`use_ema`; training then
    needs `shared.callbacks.weight_averaging`)."""
    import keras

    if name not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer. Received: optimizer={name!r}. Expected one of: {', '.join(OPTIMIZERS)}."
        )
    # Every Keras 3 optimizer takes decoupled weight decay; 0 means none, as configured (AdamW's own
    # default is 0.004, so it gets the 0 explicitly; the others skip decay entirely with None).
    kwargs = {"learning_rate": learning_rate,
              "weight_decay": float(weight_decay or 0.0) if name == "adamw" else (weight_decay or None)}
    if clipnorm:
        kwargs["clipnorm"] = clipnorm
    if label:
        kwargs["name"] = label
    if ema_momentum:
        kwargs.update(use_ema=True, ema_momentum=ema_momentum)
    if name == "sgd":
        return keras.optimizers.SGD(momentum=momentum, nesterov=True, **kwargs)
    return getattr(keras.optimizers, OPTIMIZERS[name])(**kwargs)


def get_loss(name, **kwargs):
    """Return a Keras loss object for `name` (see LOSSES)."""
    import keras

    if name not in LOSSES:
        raise ValueError(f"Unknown loss. Received: loss={name!r}. Expected one of: {', '.join(LOSSES)}.")
    if name == "triplet":
        from shared.losses import TripletLoss

        return TripletLoss(**kwargs)
    return getattr(keras.losses, LOSSES[name])(**kwargs)


def get_activation(name):
    """Return a Keras activation layer for `name` (see ACTIVATIONS)."""
    import keras

    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation. Received: activation={name!r}. Expected one of: {', '.join(ACTIVATIONS)}."
        )
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.1)
    return keras.layers.Activation(name)


def build_optimizer(config, steps_per_epoch, encoder=None):
    """The optimizer of a `shared.config.OptimizerConfig`, with its learning-rate schedule (or, under a wall-time
    budget `max_train_seconds`, a plain rate that `shared.callbacks.TimeBudget` anneals by the clock) and its
    gradient clipping, keeping the weights' moving average when the config has `ema_momentum` set (a
    `SupervisedConfig`; an `OptimizerConfig` has no such field: the task averages its own way, or not at all).

    `encoder`: a pretrained part of the model (a Keras layer or model) that trains at
    `config.encoder_learning_rate` (under the same schedule), the rest at `config.learning_rate`: a
    `keras.optimizers.MultiOptimizer` mapping the encoder's variables to their own optimizer, named "encoder".
    Without an encoder, or when the config's `encoder_learning_rate` is None, one optimizer trains everything.
    """
    import keras

    def optimizer(learning_rate, label=None):
        if not config.max_train_seconds:
            learning_rate = learning_rate_schedule(config, learning_rate, steps_per_epoch)
        return get_optimizer(config.optimizer, learning_rate, weight_decay=config.weight_decay,
                             clipnorm=config.clipnorm, label=label, ema_momentum=getattr(config, "ema_momentum", None))

    # Only the configs of tasks with a pretrained part (which pass `encoder`) have `encoder_learning_rate`.
    if encoder is None or config.encoder_learning_rate is None:
        return optimizer(config.learning_rate)
    # A map of path patterns, not a function: the saved model reloads it.
    return keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
        optimizer(config.learning_rate),
        {variables_pattern(encoder): optimizer(config.encoder_learning_rate, label="encoder")}))


def learning_rate_schedule(config, learning_rate, steps_per_epoch):
    """`learning_rate` under the config's schedule: constant, or cosine decay over the epochs after a linear
    warmup from a tenth of it over `warmup_epochs`."""
    import keras

    if config.learning_rate_schedule != "cosine":
        return learning_rate
    warmup_steps = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate if not warmup_steps else learning_rate / 10,
        decay_steps=max(1, (config.epochs - config.warmup_epochs) * steps_per_epoch),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def variables_pattern(layer):
    """A regular expression matching the paths of `layer`'s variables, for `keras.optimizers.OptimizerMap`.

    It names the first component of each path: usually the layer that made the variable (`stem_conv/kernel`,
    `transformer_layer_0/...`; a functional model adds no prefix of its own, a Sequential its name). So it relies
    on no variable outside `layer` starting with one of those names (Keras keeps a model's layer names unique)."""
    names = sorted({variable.path.split("/")[0] for variable in layer.weights})
    return f"({'|'.join(map(re.escape, names))})/.*"
