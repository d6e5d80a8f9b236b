"""The diffusion model (apps/vision/generative/diffusion.py): sampling uses the EMA weights and the configured DDIM
steps; and both generators (GAN, diffusion) serve the same images for the same seed, also from a SavedModel in a
fresh process."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.tiny_data import make_idx_folder

# Loads each SavedModel given and prints {path: {seed: sha256 of generate(seed, count=6, class_id=3)'s images}}.
CHILD = """
import hashlib, json, sys
import numpy as np
from shared.export import load_serving

def digest(images):
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()

result = {}
for path in sys.argv[1:]:
    serving = load_serving(path)
    result[path] = {str(seed): digest(serving["generate"](seed=np.int32(seed), count=np.int32(6),
                                                          class_id=np.int32(3))["images"]) for seed in (7, 8)}
print(json.dumps(result))
"""


def smoke_task(task_name, data_dir, overrides=()):
    from pipelines import catalog
    from pipelines.train import resolve_config

    _, spec = catalog.task_spec("vision", task_name)
    task = catalog.load_task(spec)
    config = resolve_config(spec, "smoke", overrides=["batch_size=16", "conditional=true", *overrides])
    data = task.build_data(config, task.check_inputs(config, str(data_dir)))
    return task, config, data


def digest(images):
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


# Both go through the same serving code (apps/vision/generative/sampling.py); the diffusion export traces a U-Net
# inside a while loop for two signatures, which costs minutes on a loaded machine: it runs with --run-large.
@pytest.mark.parametrize("task_name", ["gan", pytest.param("diffusion", marks=pytest.mark.large)])
def test_the_same_seed_gives_the_same_images_in_a_fresh_process(task_name, tmp_path):
    import keras

    from shared import export

    data_dir = make_idx_folder(tmp_path / "data")
    paths, expected = [], {}
    for task_name in (task_name,):
        task, config, data = smoke_task(task_name, data_dir)
        keras.utils.set_random_seed(config.seed)
        model = task.build_model(config, data)
        endpoints = {name: endpoint for name, endpoint in task.endpoints(model, config, data.info).items()
                     if name in ("serving_default", "generate")}
        serving = export.serve_in_memory(endpoints)
        generate = lambda seed: serving["generate"](seed=np.int32(seed), count=np.int32(6),  # noqa: E731
                                                    class_id=np.int32(3))["images"]
        first, again, other = generate(7), generate(7), generate(8)
        assert first.dtype == np.uint8 and first.shape == (6, 28, 28)
        np.testing.assert_array_equal(first, again)
        assert np.any(first != other), task_name
        path = str(export.write_saved_model(model, endpoints, tmp_path / task_name))
        paths.append(path)
        expected[path] = {"7": digest(first), "8": digest(other)}

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", CHILD, *paths], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_sampling_uses_the_ema_weights_the_configured_steps_and_the_class(tmp_path):
    import keras

    task, config, data = smoke_task("diffusion", make_idx_folder(tmp_path / "data"))
    keras.utils.set_random_seed(0)
    model = task.build_model(config, data)
    ema_before = [np.asarray(weight).copy() for weight in model.ema_network.weights]
    for batch in data.train.take(2):  # two eager training steps: no graph to trace
        model.train_step(batch)
    network = [np.asarray(weight) for weight in model.network.weights]
    ema_after = [np.asarray(weight) for weight in model.ema_network.weights]
    # Each step moved the average toward the trained weights (a kernel the training changed).
    index = next(i for i, weight in enumerate(model.network.weights) if weight.path.endswith("stem/kernel"))
    assert 0 < np.abs(ema_after[index] - network[index]).max() < np.abs(ema_before[index] - network[index]).max()

    latents = np.random.default_rng(0).standard_normal((3, 28, 28, 1)).astype(np.float32)

    def sample(class_ids):
        return np.asarray(model({"latents": latents, "class_ids": np.array(class_ids, np.int32)}))

    reference = sample([1, 1, 1])
    assert reference.shape == (3, 28, 28, 1) and np.abs(reference).max() <= 1.0
    assert np.abs(sample([2, 2, 2]) - reference).max() > 1e-4  # the class conditions the samples
    for weight in model.network.weights:  # the trained (non-averaged) weights do not sample
        weight.assign(np.zeros(weight.shape, weight.dtype))
    np.testing.assert_allclose(sample([1, 1, 1]), reference, atol=1e-6)
    model.sampling_steps = config.sampling_steps + 3  # a read at call time: DDIM with more steps
    assert np.abs(sample([1, 1, 1]) - reference).max() > 1e-4


def test_a_ddim_step_renoises_with_the_noise_that_agrees_with_the_clipped_estimate(tmp_path):
    task, config, data = smoke_task("diffusion", make_idx_folder(tmp_path / "data"))
    model = task.build_model(config, data)
    times, next_times = np.array([0.8, 0.8], np.float32), np.array([0.6, 0.6], np.float32)
    signal, noise_rate = (np.asarray(rate)[:, None, None, None] for rate in model.rates(times))
    next_signal, next_noise = (np.asarray(rate)[:, None, None, None] for rate in model.rates(next_times))
    noisy = np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype(np.float32)

    # Inside the pixel range nothing is clipped: the step is plain DDIM with the predicted noise.
    clean = np.random.default_rng(1).uniform(-0.9, 0.9, noisy.shape).astype(np.float32)
    predicted = (noisy - signal * clean) / noise_rate
    stepped, estimate = (np.asarray(value) for value in model.ddim_step(noisy, predicted, times, next_times))
    np.testing.assert_allclose(estimate, clean, atol=1e-5)
    np.testing.assert_allclose(stepped, next_signal * clean + next_noise * predicted, atol=1e-4)

    # A guided prediction that overshoots puts x0 far outside [-1, 1]: x0 is clipped, and the noise the next x is
    # built with is the one that agrees with the clipped x0, not the overshoot, which the clip would otherwise
    # feed back into the next step (saturated blobs).
    overshoot = predicted - 5.0
    stepped, estimate = (np.asarray(value) for value in model.ddim_step(noisy, overshoot, times, next_times))
    assert estimate.min() >= -1.0 and estimate.max() <= 1.0 and np.isclose(estimate, 1.0).mean() > 0.9
    agreeing = (noisy - signal * estimate) / noise_rate
    np.testing.assert_allclose(stepped, next_signal * estimate + next_noise * agreeing, atol=1e-4)
    assert np.abs(stepped - (next_signal * estimate + next_noise * overshoot)).max() > 1.0
