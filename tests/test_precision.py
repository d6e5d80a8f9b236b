"""The `precision` training key: validated, `auto` resolved from the hardware, a mixed_bfloat16 run whose export
still returns float32 and passes the fresh-process check, and the tasks that refuse it."""

import numpy as np
import pytest

from pipelines import catalog
from pipelines.train import resolve_config
from shared import precision
from shared.errors import ConfigError
from tests.conftest import run_cli


def test_bad_precision_is_refused_with_the_choices(tracking_uri):
    with pytest.raises(ConfigError, match=r"Received: precision='half'. Expected one of: float32, mixed_bfloat16"):
        resolve_config(catalog.task_spec("vision", None)[1], "smoke", overrides=["precision=half"])
    result = run_cli("train", "vision", "--preset", "smoke", "--set", "precision=fp16", "--tracking-uri", tracking_uri)
    assert result.returncode == 2, result.stderr
    assert "Invalid value for config key precision" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("flags", "gpus", "expected", "why"), [
    ({"fpu", "avx512f", "avx512_bf16", "amx_bf16"}, [], "mixed_bfloat16", "amx_bf16"),
    ({"fpu", "avx512_bf16"}, [], "mixed_bfloat16", "avx512_bf16"),
    ({"fpu", "avx2", "avx512f"}, [], "float32", "neither amx_bf16 nor avx512_bf16"),
    (set(), [(8, 6)], "mixed_bfloat16", "8.6 >= 8.0"),
    ({"amx_bf16"}, [(7, 5)], "mixed_float16", "7.5 < 8.0"),
])
def test_auto_follows_the_hardware(flags, gpus, expected, why):
    policy, reason = precision.resolve("auto", flags=flags, gpu_capabilities=gpus)
    assert policy == expected and why in reason
    assert precision.resolve("mixed_float16", flags=flags, gpu_capabilities=gpus)[0] == "mixed_float16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 amx_bf16\nbugs\t\t: spectre\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "sse", "avx512_bf16", "amx_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == set()


def test_custom_train_step_task_refuses_mixed_precision(tracking_uri):
    result = run_cli("train", "vision", "--task", "gan", "--preset", "smoke", "--set", "precision=mixed_bfloat16",
                     "--tracking-uri", tracking_uri)
    assert result.returncode == 2, result.stderr
    assert "vision/gan task" in result.stderr and "own train_step" in result.stderr
    assert "Fix: --set precision=float32" in result.stderr


def test_reinforcement_learning_says_why_it_has_no_precision_key():
    with pytest.raises(ConfigError, match="RL agents train in float32 only"):
        resolve_config(catalog.task_spec("gaming_rl", "cartpole-dqn")[1], "smoke", overrides=["precision=auto"])


def test_mixed_bfloat16_run_exports_float32_outputs_that_pass_the_fresh_process_check(
        tracking_uri, fashion_mnist_dir, tmp_path):
    import keras
    import mlflow
    import tensorflow as tf

    from pipelines.train import train

    summary = train("vision", preset="smoke", data_dir=str(fashion_mnist_dir), tracking_uri=tracking_uri,
                    overrides=["precision=mixed_bfloat16", "epochs=1", "max_train_examples=512"],
                    export_root=str(tmp_path / "exports"))
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored after the run
    run = mlflow.tracking.MlflowClient(tracking_uri).get_run(summary["run_id"])
    assert run.data.tags["dlsuite.precision_policy"] == "mixed_bfloat16"
    assert run.data.params["precision"] == "mixed_bfloat16"
    assert float(run.data.tags["dlsuite.export_max_abs_difference"]) <= 1e-5  # the export check held
    assert np.isfinite(summary["metrics"]["test_accuracy"])
    served = tf.saved_model.load(summary["export_dir"]).signatures["serving_default"]
    outputs = served(images=tf.zeros((2, 28, 28), tf.uint8))
    floats = {name: value.dtype.name for name, value in outputs.items() if value.dtype.is_floating}
    assert floats and set(floats.values()) == {"float32"}, floats


def test_mixed_float16_builds_16_bit_layers_compiles_with_loss_scaling_and_is_restored(tracking_uri):
    import keras
    import mlflow

    config = resolve_config(catalog.task_spec("vision", None)[1], "smoke", overrides=["precision=mixed_float16"])
    with mlflow.start_run() as run, precision.applied(config):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(8, name="hidden")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, dtype="float32", name="output")(hidden))
        model.compile(optimizer="adam", loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.get_layer("hidden").compute_dtype == "float16" and model.get_layer("hidden").variable_dtype == "float32"
    assert model.output.dtype == "float32"
    assert keras.mixed_precision.dtype_policy().name == "float32"
    tags = mlflow.tracking.MlflowClient(tracking_uri).get_run(run.info.run_id).data.tags
    assert tags["dlsuite.precision_policy"] == "mixed_float16"
    assert tags["dlsuite.precision_reason"] == "set by the precision key"


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_diffusion_trains_in_16_bits_with_float32_noise_embedding_loss_and_samples(policy, tracking_uri):
    """The diffusion task takes a 16-bit policy: its convolutions compute in 16 bits, while the noise-rate
    embedding (sinusoids of rates times frequencies up to 1,000), the predicted noise, the ε-loss and the DDIM
    sampler stay float32; under mixed_float16 the loss is scaled (a LossScaleOptimizer) and the step is finite."""
    import keras
    import mlflow
    import tensorflow as tf

    from apps.vision.generative.diffusion import Diffusion
    from apps.vision.generative.models import build_unet
    from apps.vision.generative.tasks.diffusion import DiffusionTask

    assert DiffusionTask.precision_refusal is None
    config = resolve_config(catalog.task_spec("vision", "diffusion")[1], "smoke", overrides=[f"precision={policy}"])
    with mlflow.start_run(), precision.applied(config):
        networks = [build_unet(config.filters, 1, config.embedding_dim, 10, name=name) for name in ("unet", "ema")]
        networks[1].set_weights(networks[0].get_weights())
        model = Diffusion(*networks, sampling_steps=2, num_classes=10, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(1e-3))  # its step is proportional to the gradient
    unet = networks[0]
    assert unet.get_layer("down0_0_conv1").compute_dtype == policy.split("_")[1]
    assert unet.get_layer("down0_0_conv1").variable_dtype == "float32"
    assert unet.get_layer("noise_embedding").compute_dtype == "float32"
    assert unet.output.dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 28, 28, 1)).astype(np.uint8)
    before = unet.get_layer("noise").kernel.numpy().copy()  # zero-initialized: the first step's only gradient
    batches = tf.data.Dataset.from_tensors((images, np.arange(16, dtype=np.int32) % 10))  # as the task's data
    loss = model.fit(batches, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss) and 0 < loss < 10
    step = np.abs(unet.get_layer("noise").kernel.numpy() - before).max()
    assert 1e-7 < step < 1e-1  # the gradients arrived unscaled (a loss scale of 2**15 would give steps of ~10)
    samples = model({"latents": rng.standard_normal((2, 28, 28, 1)).astype(np.float32),
                     "class_ids": np.array([0, 1], np.int32)})
    assert samples.dtype == "float32" and np.all(np.isfinite(samples)) and np.abs(samples).max() <= 1
