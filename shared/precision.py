"""The `precision` training key: which Keras dtype policy a run builds its model under.

`float32` (every layer computes and stores in float32), `mixed_bfloat16` / `mixed_float16` (layers compute in
16 bits and keep float32 weights: Keras' mixed-precision policies; under `mixed_float16`, `model.compile` wraps
the optimizer in a `LossScaleOptimizer` by itself) or `auto`: bfloat16 where the hardware runs it fast (a GPU of
compute capability 8 or more, or a CPU with AMX or AVX-512 BF16), float16 on an older GPU, float32 elsewhere.

The policy is set globally for the time the model is built and trained (`applied`), then the previous one is
restored, so tuning trials and tests that train several models in one process do not leak it. Layers that must
stay float32 (the output probabilities and logits) say `dtype="float32"` in the apps' models.py, so losses,
metrics and the SavedModel's outputs stay float32 under any policy.

This module must not import TensorFlow at import time: the config validation uses `PRECISIONS`.
"""

import contextlib
from pathlib import Path

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
FAST_BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo=Path("/proc/cpuinfo")):
    """The CPU's feature flags (the `flags` line of /proc/cpuinfo), or an empty set where there is none."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def gpu_compute_capabilities():
    """`[(major, minor), ...]` of the visible GPUs (empty on a CPU-only machine)."""
    import tensorflow as tf

    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(device).get("compute_capability")
        if capability:
            capabilities.append(tuple(capability))
    return capabilities


def choose_auto(flags, gpu_capabilities):
    """`(policy, reason)` for `precision=auto` given the CPU's flags and the GPUs' compute capabilities."""
    if gpu_capabilities:
        oldest = min(gpu_capabilities)
        if oldest >= (8, 0):
            return "mixed_bfloat16", f"GPU compute capability {oldest[0]}.{oldest[1]} >= 8.0 runs bfloat16 natively"
        return "mixed_float16", (f"GPU compute capability {oldest[0]}.{oldest[1]} < 8.0 has no fast bfloat16; "
                                 "float16 tensor cores with loss scaling")
    fast = [flag for flag in FAST_BFLOAT16_CPU_FLAGS if flag in flags]
    if fast:
        return "mixed_bfloat16", f"CPU has {'/'.join(fast)} (oneDNN runs bfloat16 matmuls and convolutions on it)"
    return "float32", "no GPU, and the CPU has neither amx_bf16 nor avx512_bf16: bfloat16 would be emulated"


def resolve(precision, flags=None, gpu_capabilities=None):
    """`(policy, reason)`: the Keras dtype policy a `precision` value means on this machine."""
    if precision != "auto":
        return precision, "set by the precision key"
    flags = cpu_flags() if flags is None else flags
    gpu_capabilities = gpu_compute_capabilities() if gpu_capabilities is None else gpu_capabilities
    return choose_auto(flags, gpu_capabilities)


def check_supported(task, config):
    """Refuse (ConfigError, exit 2) a 16-bit precision for a task whose training loop cannot take it."""
    from shared.errors import ConfigError

    precision = getattr(config, "precision", "float32")
    refusal = getattr(task, "precision_refusal", None)
    if precision == "float32" or refusal is None:
        return
    raise ConfigError(
        f"Invalid value for config key precision for the {task.app}/{task.name} task. Received: "
        f"precision={precision!r}. Expected precision=float32: {refusal}. Fix: --set precision=float32."
    )


@contextlib.contextmanager
def applied(config):
    """Build and train under the config's precision; log the chosen policy and why to the active MLflow run (a
    distributed job's other workers have none: they only print it)."""
    import keras
    import mlflow

    precision = getattr(config, "precision", None)
    if precision is None:  # a task without the key (reinforcement learning) trains in float32
        yield
        return
    policy, reason = resolve(precision)
    if mlflow.active_run() is not None:  # never open a run of its own (set_tags would)
        mlflow.set_tags({"dlsuite.precision_policy": policy, "dlsuite.precision_reason": reason})
    print(f"dlsuite: precision {precision} -> {policy} ({reason})", flush=True)
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
