"""The GAN (apps/vision/generative/gan.py): a run killed with SIGKILL resumes with both optimizers' state; the
non-saturating loss trains both networks."""

import os
import signal
import subprocess
import sys

import numpy as np

from tests.conftest import REPO
from tests.tiny_data import make_idx_folder

OVERRIDES = ["batch_size=16", "epochs=3", "critic_steps=1"]  # one critic update per batch: a smaller graph

# The child trains the smoke GAN through the task's own `fit` (model.fit + BackupAndRestore), saves both optimizers'
# variables after epoch 2 has been checkpointed, says so, and waits at the start of epoch 3 to be killed.
CHILD = """
import sys, time
import keras
import numpy as np
from pipelines.train import resolve_config
from pipelines import catalog
from tests.vision.test_gan import OVERRIDES, optimizer_state

data_dir, checkpoints, snapshot = sys.argv[1:]
_, spec = catalog.task_spec("vision", "gan")
task = catalog.load_task(spec)
config = resolve_config(spec, "smoke", overrides=OVERRIDES)
keras.utils.set_random_seed(config.seed)
data = task.build_data(config, task.check_inputs(config, data_dir))
model = task.build_model(config, data)

class Killable(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:  # BackupAndRestore (the first callback) has written epoch 2's checkpoint
            np.savez(snapshot, **optimizer_state(self.model))
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            print("checkpointed", flush=True)
            time.sleep(600)

task.fit(model, data, config, [Killable()], checkpoints)
"""


def optimizer_state(model):
    """Every variable of both optimizers (step counter, learning rate, moments), keyed `generator/<path>` and
    `critic/<path>`."""
    return {f"{name}/{variable.path}": np.asarray(variable)
            for name, optimizer in (("generator", model.generator_optimizer), ("critic", model.critic_optimizer))
            for variable in optimizer.variables}


def test_a_killed_gan_run_resumes_with_both_optimizers_state(tmp_path):
    import keras

    from pipelines import catalog
    from pipelines.train import resolve_config

    data_dir = make_idx_folder(tmp_path / "data")
    checkpoints, snapshot = tmp_path / "checkpoints", tmp_path / "killed.npz"
    checkpoints.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), str(checkpoints), str(snapshot)], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in child.stdout:
            seen.append(line)
            if line.startswith("checkpointed"):
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL, "".join(seen)
    killed = dict(np.load(snapshot))

    _, spec = catalog.task_spec("vision", "gan")
    task = catalog.load_task(spec)
    config = resolve_config(spec, "smoke", overrides=OVERRIDES)
    data = task.build_data(config, task.check_inputs(config, str(data_dir)))
    model = task.build_model(config, data)
    assert int(model.generator_optimizer.iterations) == 0 and int(model.critic_optimizer.iterations) == 0

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # after BackupAndRestore (the first callback) has restored
            self.restored = optimizer_state(self.model)
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    probe = Probe()
    task.fit(model, data, config, [probe], checkpoints)
    assert probe.epochs == [2]  # only the epoch the kill interrupted
    assert set(probe.restored) == set(killed)
    for key, value in killed.items():
        np.testing.assert_array_equal(probe.restored[key], value, err_msg=key)
    counters = {name: int(next(value for key, value in killed.items() if key.startswith(name)
                               and key.endswith("iteration"))) for name in ("generator", "critic")}
    assert counters == {"generator": 2 * 4, "critic": 2 * 4 * config.critic_steps}  # 2 epochs of 4 batches
    kernels = [key for key in killed if "kernel" in key and ("momentum" in key or "velocity" in key)]
    assert len(kernels) == 2 * (3 + 3) and all(np.any(killed[key] != 0) for key in kernels), kernels  # learned moments
    assert int(model.generator_optimizer.iterations) == 3 * 4
    assert int(model.critic_optimizer.iterations) == 3 * 4 * config.critic_steps


def test_the_non_saturating_loss_trains_both_networks():
    import keras

    import dataclasses

    from apps.vision.generative.config import gan_smoke
    from apps.vision.generative.gan import GAN
    from apps.vision.generative.models import build_critic, build_generator

    config = dataclasses.replace(gan_smoke(), loss="non_saturating", critic_steps=1)
    model = GAN(build_generator(config.latent_dim, config.generator_filters), build_critic(config.critic_filters),
                config.latent_dim, loss=config.loss, critic_steps=1, seed=0)
    model.compile(generator_optimizer=keras.optimizers.Adam(1e-3), critic_optimizer=keras.optimizers.Adam(1e-3))
    before = [np.asarray(w).copy() for w in (model.generator.trainable_weights[0], model.critic.trainable_weights[0])]
    images = np.random.default_rng(0).integers(0, 256, (32, 28, 28), dtype=np.uint8)
    history = model.fit(images, batch_size=16, epochs=1, verbose=0).history
    assert set(history) == {"loss", "critic_loss", "generator_loss"}
    assert all(np.isfinite(values[-1]) for values in history.values())
    # The logistic critic loss starts near 2 log 2 (scores near 0 for real and fake alike).
    assert 0.5 < history["critic_loss"][0] < 3.0
    after = [np.asarray(w) for w in (model.generator.trainable_weights[0], model.critic.trainable_weights[0])]
    assert all(np.any(a != b) for a, b in zip(before, after))
