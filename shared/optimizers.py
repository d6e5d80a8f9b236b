"""Optimizers, losses and activations selectable by name.

The name tables are plain data so configs can validate names without importing
TensorFlow; the factories import Keras when called.
"""

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


def get_optimizer(name, learning_rate, weight_decay=0.0, momentum=0.9, clipnorm=None):
    """Return a Keras optimizer. `learning_rate` may be a float or a schedule."""
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


def build_optimizer(config, steps_per_epoch):
    """The optimizer of a `shared.config.SupervisedConfig`, with its learning-rate schedule."""
    import keras

    learning_rate = config.learning_rate
    if config.learning_rate_schedule == "cosine":
        warmup_steps = config.warmup_epochs * steps_per_epoch
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate if not warmup_steps else config.learning_rate / 10,
            decay_steps=max(1, (config.epochs - config.warmup_epochs) * steps_per_epoch),
            warmup_target=config.learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    return get_optimizer(config.optimizer, learning_rate, weight_decay=config.weight_decay)
