"""Which ops gain from bfloat16 on this CPU, and which lose: each of the layers the suite's CNNs are made of,
timed forward and backward (one training step's work for that layer) in float32 and in bfloat16.

The shapes are those of the segmentation preset's EfficientNet-Lite0 U-Net at 416 px, batch 8 (its early, wide
stride-2 maps and its late, deep ones), and of the Fashion-MNIST CNN. Each layer is built under the `float32`
or the `mixed_bfloat16` policy (float32 weights read in bfloat16) and runs in a `tf.function` on an input
already in its compute dtype; the casts a mixed policy adds where a float32 layer meets a bfloat16 one are
timed apart (`cast`).
Prints, per op, milliseconds per step in each dtype and the bfloat16 speed-up, then the command.

    .venv/bin/python benchmarks/precision_ops.py [--seconds 2]
"""

import argparse
import os
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def cases():
    """(name, Keras layer class, its arguments, input shape with the batch first)."""
    import keras

    layers = keras.layers
    return [
        ("conv 3x3, 32->32 ch, 208x208 (stem)", layers.Conv2D, dict(filters=32, kernel_size=3, padding="same"),
         (8, 208, 208, 32)),
        ("depthwise 3x3, 208x208x32", layers.DepthwiseConv2D, dict(kernel_size=3, padding="same"), (8, 208, 208, 32)),
        ("depthwise 5x5, 52x52x40", layers.DepthwiseConv2D, dict(kernel_size=5, padding="same"), (8, 52, 52, 40)),
        ("pointwise 1x1, 32->96 ch, 104x104", layers.Conv2D, dict(filters=96, kernel_size=1), (8, 104, 104, 32)),
        ("pointwise 1x1, 192->320 ch, 13x13", layers.Conv2D, dict(filters=320, kernel_size=1), (8, 13, 13, 192)),
        ("conv 3x3, 64->48 ch, 104x104 (decoder)", layers.Conv2D, dict(filters=48, kernel_size=3, padding="same"),
         (8, 104, 104, 64)),
        ("batch norm, 104x104x96", layers.BatchNormalization, {}, (8, 104, 104, 96)),
        ("relu6, 104x104x96", layers.ReLU, dict(max_value=6.0), (8, 104, 104, 96)),
        ("bilinear resize x2, 52x52x64", layers.UpSampling2D, dict(size=2, interpolation="bilinear"),
         (8, 52, 52, 64)),
        ("conv 3x3, 32->64 ch, 14x14, batch 128 (Fashion-MNIST CNN)", layers.Conv2D,
         dict(filters=64, kernel_size=3, padding="same"), (128, 14, 14, 32)),
        ("dense 3136->128, batch 128", layers.Dense, dict(units=128), (128, 3136)),
    ]


def time_step(layer_class, arguments, shape, policy, seconds):
    """Milliseconds per forward + backward pass of a fresh layer under dtype `policy` ("float32" or
    "mixed_bfloat16": float32 weights read in bfloat16) on a random input of `shape` already in the policy's
    compute dtype."""
    import tensorflow as tf

    layer = layer_class(**arguments, dtype=policy)
    layer.build(shape)
    x = tf.cast(tf.random.normal(shape), layer.compute_dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    return _per_call(step, x, seconds)


def _per_call(function, x, seconds):
    function(x)  # trace
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        function(x)
        calls += 1
    return (time.perf_counter() - start) / calls * 1000


def cast_ms(shape, seconds):
    """Milliseconds for casting a float32 tensor of `shape` to bfloat16 and back (what a mixed policy adds at a
    float32 layer's edges)."""
    import tensorflow as tf

    x = tf.random.normal(shape)
    function = tf.function(lambda x: tf.cast(tf.cast(x, tf.bfloat16), tf.float32))
    return _per_call(function, x, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per op and dtype")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{'op (forward + backward)':62} {'float32 ms':>11} {'bfloat16 ms':>12} {'speed-up':>9}", flush=True)
    for name, layer_class, arguments, shape in cases():
        f32 = time_step(layer_class, arguments, shape, "float32", args.seconds)
        bf16 = time_step(layer_class, arguments, shape, "mixed_bfloat16", args.seconds)
        print(f"{name:62} {f32:11.2f} {bf16:12.2f} {f32 / bf16:8.2f}x", flush=True)
    print(f"{'cast to bfloat16 and back, 8x104x104x96':62} {cast_ms((8, 104, 104, 96), args.seconds):11.2f}")
    print(f"load average {os.getloadavg()[0]:.1f}; wall {time.perf_counter() - started:.0f} s; command: "
          f"python benchmarks/precision_ops.py {shlex.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
