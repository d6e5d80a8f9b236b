"""Building blocks for functional Keras models.

Each block is a function from a KerasTensor to a KerasTensor made only of core
Keras layers, so models built from them save, load and export with no custom
objects. Activations are chosen by name (see `shared.optimizers.ACTIVATIONS`).
"""

import keras

from shared.optimizers import get_activation


def regularizer(l1=0.0, l2=0.0):
    """An L1/L2 weight regularizer, or None when both are zero."""
    if not l1 and not l2:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def dense_block(x, units, activation="relu", dropout_rate=0.0, l1=0.0, l2=0.0, batch_norm=False, name=None,
                batch_norm_momentum=0.99):
    """Dense -> [BatchNorm] -> activation -> [Dropout]."""
    x = keras.layers.Dense(units, use_bias=not batch_norm, kernel_regularizer=regularizer(l1, l2),
                           name=name and f"{name}_dense")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=name and f"{name}_bn")(x)
    x = get_activation(activation)(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=name and f"{name}_dropout")(x)
    return x


def conv_block(x, filters, kernel_size=3, activation="relu", batch_norm=True, l2=0.0, dropout_rate=0.0,
               pool=False, strides=1, rank=2, name=None, batch_norm_momentum=0.99):
    """Conv -> [BatchNorm] -> activation, repeated once, then optional pool and dropout.

    `rank` 1 or 2 picks Conv1D/Conv2D (audio frames, images, spectrograms).
    """
    conv = keras.layers.Conv2D if rank == 2 else keras.layers.Conv1D
    pooling = keras.layers.MaxPooling2D if rank == 2 else keras.layers.MaxPooling1D
    x = conv(filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm,
             kernel_regularizer=regularizer(l2=l2), name=name and f"{name}_conv")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=name and f"{name}_bn")(x)
    x = get_activation(activation)(x)
    if pool:
        x = pooling(2, name=name and f"{name}_pool")(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=name and f"{name}_dropout")(x)
    return x


def residual_block(x, filters, kernel_size=3, activation="relu", l2=0.0, strides=1, rank=2, name=None):
    """Two conv layers with batch norm and an identity (or 1x1 projection) shortcut."""
    conv = keras.layers.Conv2D if rank == 2 else keras.layers.Conv1D
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv(filters, 1, strides=strides, use_bias=False, kernel_regularizer=regularizer(l2=l2),
                        name=name and f"{name}_proj")(x)
        shortcut = keras.layers.BatchNormalization(name=name and f"{name}_proj_bn")(shortcut)
    y = conv_block(x, filters, kernel_size, activation, l2=l2, strides=strides, rank=rank,
                   name=name and f"{name}_a")
    y = conv(filters, kernel_size, padding="same", use_bias=False, kernel_regularizer=regularizer(l2=l2),
             name=name and f"{name}_b_conv")(y)
    y = keras.layers.BatchNormalization(name=name and f"{name}_b_bn")(y)
    y = keras.layers.Add(name=name and f"{name}_add")([shortcut, y])
    return get_activation(activation)(y)


def recurrent_block(x, units, cell="gru", bidirectional=True, return_sequences=True, dropout_rate=0.0,
                    name=None):
    """A GRU or LSTM layer, optionally bidirectional."""
    layers = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "simple_rnn": keras.layers.SimpleRNN}
    if cell not in layers:
        raise ValueError(f"Unknown recurrent cell. Received: cell={cell!r}. Expected one of: {', '.join(layers)}.")
    layer = layers[cell](units, return_sequences=return_sequences, dropout=dropout_rate,
                         name=name and f"{name}_{cell}")
    if bidirectional:
        layer = keras.layers.Bidirectional(layer, name=name and f"{name}_bidirectional")
    return layer(x)
