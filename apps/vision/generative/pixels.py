"""uint8 images <-> float pixels, as graph ops for the generative models and their endpoints.

    to_float(images, value_range)   uint8 `[batch, 28, 28]` -> float32 `[batch, 28, 28, 1]` in value_range
    to_uint8(pixels, value_range)   float `[batch, 28, 28(, 1)]` in value_range -> uint8 `[batch, 28, 28]`
                                    (clipped, rounded)
"""

import keras

IMAGE_SHAPE = (28, 28)
UNIT = (0.0, 1.0)


def to_float(images, value_range=UNIT):
    """uint8 images `[batch, 28, 28]` (or with a channel axis) -> float32 `[batch, 28, 28, 1]` in `value_range`."""
    low, high = value_range
    pixels = keras.ops.cast(images, "float32") * ((high - low) / 255.0) + low
    return keras.ops.expand_dims(pixels, -1) if len(pixels.shape) == 3 else pixels


def to_uint8(pixels, value_range=UNIT):
    """float pixels `[batch, 28, 28, 1]` (or without the channel axis) in `value_range` -> uint8 `[batch, 28, 28]`:
    clipped to the range, then rounded to the nearest of 256 levels."""
    low, high = value_range
    if len(pixels.shape) == 4:
        pixels = keras.ops.squeeze(pixels, -1)
    unit = keras.ops.clip((keras.ops.cast(pixels, "float32") - low) / (high - low), 0.0, 1.0)
    return keras.ops.cast(keras.ops.round(unit * 255.0), "uint8")
