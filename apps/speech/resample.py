"""Sample-rate conversion with TensorFlow ops, so it runs inside the SavedModel on rates known only at run time.

`resample(waveform, rate_in, rate_out)` is scipy's `signal.resample_poly` written with tf ops: the ratio
`rate_out / rate_in` reduced to `up / down`, a Kaiser-windowed (beta 5) sinc low-pass of half-length
`10 * max(up, down)` with cutoff `1 / max(up, down)` of the upsampled Nyquist, applied polyphase: each output
sample `n` is `sum_j x[j] h[n * down - j * up + half_length]`, i.e. only the ~`20 * max(up, down) / up` taps
that touch real input samples are computed (a gather, not a zero-stuffed convolution). Output length
`ceil(len(x) * up / down)`, as scipy. tests/speech/test_resample.py checks it against scipy on FSDD audio.

`check_rate` refuses rates outside [MIN_RATE, MAX_RATE] with a message the server returns as a 400.
"""

import tensorflow as tf

MIN_RATE = 4000
MAX_RATE = 192000
KAISER_BETA = 5.0
HALF_LENGTH_PER_RATE = 10


def check_rate(sample_rate):
    """An assertion op: `sample_rate` (scalar int) within [MIN_RATE, MAX_RATE]."""
    sample_rate = tf.cast(sample_rate, tf.int64)
    return tf.debugging.Assert(
        (sample_rate >= MIN_RATE) & (sample_rate <= MAX_RATE),
        ["Unsupported sample rate. Received: sample_rate=", sample_rate,
         f"Hz. Expected {MIN_RATE} to {MAX_RATE} Hz. Fix: resample the audio (8 to 48 kHz are common)."],
    )


def _gcd(a, b):
    return tf.while_loop(lambda a, b: b > 0, lambda a, b: (b, tf.math.floormod(a, b)), (a, b))[0]


def _kaiser_sinc(offsets, half_length, max_factor):
    """The (unnormalized) windowed-sinc filter at integer `offsets` from its center (zero outside the window)."""
    offsets = tf.cast(offsets, tf.float64)
    half = tf.cast(half_length, tf.float64)
    ratio = tf.clip_by_value(offsets / half, -1.0, 1.0)
    window = tf.math.bessel_i0(KAISER_BETA * tf.sqrt(1.0 - tf.square(ratio))) / tf.math.bessel_i0(
        tf.constant(KAISER_BETA, tf.float64))
    cutoff = 1.0 / tf.cast(max_factor, tf.float64)
    x = cutoff * offsets
    sinc = tf.where(tf.equal(x, 0.0), tf.ones_like(x), tf.sin(3.141592653589793 * x) / (3.141592653589793 * x))
    return tf.where(tf.abs(offsets) <= half, cutoff * sinc * window, tf.zeros_like(offsets))


def _resample_poly(waveforms, up, down):
    """`float32 [batch, samples]` resampled by `up / down` (int64 scalars, coprime)."""
    max_factor = tf.maximum(up, down)
    half_length = HALF_LENGTH_PER_RATE * max_factor
    # firwin scales the filter to unit DC gain; resample_poly then multiplies it by `up`.
    gain = tf.cast(up, tf.float64) / tf.reduce_sum(_kaiser_sinc(tf.range(-half_length, half_length + 1),
                                                                half_length, max_factor))
    num_in = tf.cast(tf.shape(waveforms)[1], tf.int64)
    num_out = (num_in * up + down - 1) // down
    centers = tf.range(num_out, dtype=tf.int64) * down  # output n sits at n * down on the upsampled grid
    first = -tf.math.floordiv(-(centers - half_length), up)  # ceil((n * down - half_length) / up)
    taps = tf.range(2 * half_length // up + 2, dtype=tf.int64)
    inputs = first[:, tf.newaxis] + taps[tf.newaxis, :]  # [num_out, taps] input indices
    weights = _kaiser_sinc(centers[:, tf.newaxis] - inputs * up, half_length, max_factor) * gain
    weights = tf.where((inputs >= 0) & (inputs < num_in), weights, tf.zeros_like(weights))
    gathered = tf.gather(waveforms, tf.clip_by_value(inputs, 0, tf.maximum(num_in - 1, 0)), axis=1)
    return tf.reduce_sum(gathered * tf.cast(weights, tf.float32)[tf.newaxis], axis=2)


def resample(waveforms, rate_in, rate_out):
    """`float32 [batch, samples]` at `rate_in` (scalar int tensor) -> `[batch, ceil(samples * rate_out / rate_in)]`
    at `rate_out` (a Python int). Unchanged when the rates are equal."""
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    rate_in = tf.cast(rate_in, tf.int64)
    with tf.control_dependencies([check_rate(rate_in)]):
        divisor = _gcd(tf.constant(rate_out, tf.int64), rate_in)
    up, down = rate_out // divisor, rate_in // divisor
    return tf.cond(tf.equal(rate_in, rate_out), lambda: tf.identity(waveforms),
                   lambda: _resample_poly(waveforms, up, down))
