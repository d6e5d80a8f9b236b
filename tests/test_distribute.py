"""Data-parallel training: TF_CONFIG checks, N local workers and MirroredStrategy train the weights one process
trains, a killed worker resumes, an unreachable cluster fails in time."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from shared import distribute
from shared.errors import UsageError
from tests.conftest import REPO, new_store, run_cli, runs_in

# The vision smoke model, one step of a global batch of 96 (SGD; 96 splits evenly over 2 and 3 replicas), with nothing random per replica: no dropout,
# no random flips or translations (each worker would draw its own), the same shuffle seed everywhere. Over more
# steps the runs drift apart (about 5e-4 after 4 SGD steps, 5e-3 with AdamW, whose first steps are sign-like
# and so turn rounding differences of near-zero gradients into whole steps): see the README.
SAME_MODEL = ("--preset", "smoke", "--set", "epochs=1", "--set", "max_train_examples=96", "--set", "batch_size=96",
              "--set", "dropout_rate=0", "--set", "random_flip=false", "--set", "random_translation=0", "--set", "optimizer=sgd",
              "--set", "learning_rate=0.05", "--set", "weight_decay=0", "--seed", "7")


# === TF_CONFIG and the plan (no TensorFlow) ===


@pytest.mark.parametrize("text, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}}', 'TF_CONFIG has no "task"'),
    ('{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "worker", "index": 1}}',
     r"task index is out of range. Received: index=1 for job 'worker' of 1 tasks"),
    ('{"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker", "index": 0}}', 'no valid "cluster"'),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     r"jobs MultiWorkerMirroredStrategy does not use. Received: jobs \['ps'\]"),
])
def test_malformed_tf_config_is_a_usage_error(text, message):
    with pytest.raises(UsageError, match=message):
        distribute.read_tf_config(text)


def test_plan_follows_tf_config_and_the_distribution_key():
    two = json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}})
    job = distribute.plan("auto", {"TF_CONFIG": two})
    assert (job.kind, job.cluster.num_workers, job.is_chief) == ("multi_worker", 2, False)
    assert distribute.plan("auto", {}).kind == "none"
    assert distribute.plan("none", {"TF_CONFIG": two}).is_chief  # forced to one process: it is its own chief
    one = json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}})
    assert distribute.plan("auto", {"TF_CONFIG": one}).kind == "none"
    chief = json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}})
    assert not distribute.plan("auto", {"TF_CONFIG": chief}).is_chief  # with a chief job, worker 0 is not it
    with pytest.raises(UsageError, match="distribution=multi_worker needs the cluster in TF_CONFIG"):
        distribute.plan("multi_worker", {})


def test_bad_tf_config_exits_2_before_a_run_opens(tmp_path, tracking_uri):
    result = run_cli("train", "vision", "--preset", "smoke", "--tracking-uri", tracking_uri,
                     env={"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker"}}'})
    assert result.returncode == 2, result.stderr
    assert 'TF_CONFIG has no "task" with a "type" and an "index"' in result.stderr
    assert "tensorflow" not in result.stderr.lower().replace("tf_config", "")  # refused before TensorFlow starts
    assert runs_in(tracking_uri) == []


def test_unreachable_worker_fails_within_the_timeout(tmp_path, tracking_uri):
    """Worker 0 of a two-worker cluster whose worker 1 never starts: exit 2 after the stated wait, no hang."""
    from pipelines.workers import tf_configs

    started = time.monotonic()
    result = run_cli("train", "vision", "--preset", "smoke", "--tracking-uri", tracking_uri, timeout=240,
                     env={"TF_CONFIG": tf_configs(2)[0], distribute.CLUSTER_TIMEOUT_VARIABLE: "8"})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "could not reach every worker of its cluster within 8 s" in result.stderr
    assert time.monotonic() - started < 120
    assert runs_in(tracking_uri) == []


# === Training equal to one process ===


def keras_weights(tracking_uri, run):
    """Every weight of the run's logged Keras model, by its path in the .keras file."""
    import h5py
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)  # a models:/ URI resolves through the current store
    folder = mlflow.artifacts.download_artifacts(run.data.tags["dlsuite.keras_model_uri"])
    archive = next(path for path in pathlib.Path(folder).rglob("*.keras"))
    weights = {}
    with zipfile.ZipFile(archive) as keras_file, keras_file.open("model.weights.h5") as handle, \
            h5py.File(handle, "r") as h5:
        h5.visititems(lambda name, item: weights.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None)
    return weights


def max_difference(first, second):
    assert first.keys() == second.keys()
    return max(float(np.max(np.abs(first[name].astype("float64") - second[name].astype("float64"))))
               for name in first)


def train_once(empty_store, tmp_path, name, *extra, env=None):
    uri = new_store(empty_store, tmp_path / name)
    result = run_cli("train", "vision", *SAME_MODEL, "--tracking-uri", uri, "--export-dir", tmp_path / name / "exports",
                     *extra, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = runs_in(uri)  # one MLflow run per job, whatever the number of workers
    return uri, run, result


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, empty_store):
    """One process on one device, under MirroredStrategy so that its batch norm computes the statistics as the
    distributed runs' synchronized batch norm does (E[x^2] - E[x]^2 over the batch, not TensorFlow's two-pass
    moments: 2e-4 apart after this one step)."""
    tmp_path = tmp_path_factory.mktemp("one")
    uri, run, _ = train_once(empty_store, tmp_path, "one", "--set", "distribution=mirrored")
    assert run.data.tags["dlsuite.distribution.workers"] == "1"
    return keras_weights(uri, run)


@pytest.mark.parametrize("workers", [2, pytest.param(3, marks=pytest.mark.large)])
def test_local_workers_train_the_weights_of_one_process(workers, tmp_path, one_process, empty_store):
    uri, run, result = train_once(empty_store, tmp_path, f"workers{workers}", "--workers", workers)
    assert run.data.tags["dlsuite.distribution.strategy"] == "MultiWorkerMirroredStrategy"
    assert run.data.tags["dlsuite.distribution.workers"] == str(workers)
    assert f"[worker {workers - 1}] dlsuite: worker done" in result.stdout
    difference = max_difference(one_process, keras_weights(uri, run))
    print(f"{workers} workers: max |weight difference| = {difference:.2e}")
    assert difference < 1e-5


def test_mirrored_on_two_logical_cpus_trains_the_weights_of_one_process(tmp_path, one_process, empty_store):
    uri = new_store(empty_store, tmp_path)
    program = ("import sys, tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
               "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
               "from pipelines.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run(
        [sys.executable, "-c", program, "train", "vision", *SAME_MODEL, "--set", "distribution=mirrored",
         "--tracking-uri", uri, "--export-dir", str(tmp_path / "exports")], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(uri)
    assert run.data.tags["dlsuite.distribution.strategy"] == "MirroredStrategy"
    difference = max_difference(one_process, keras_weights(uri, run))
    print(f"MirroredStrategy on 2 logical CPUs: max |weight difference| = {difference:.2e}")
    assert difference < 1e-5


# === Faults ===


@pytest.mark.large  # about 4 minutes on 2 busy cores: two jobs of two workers, three epochs
def test_killed_worker_resumes_from_the_last_backup_in_the_same_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ("--preset", "smoke", "--set", "epochs=3", "--set", "max_train_examples=1536", "--tracking-uri", uri,
            "--export-dir", str(tmp_path / "exports"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    job = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "train", "vision", *args, "--workers", "2"],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        while not list(tmp_path.glob("checkpoints/*/latest.weights.h5")):  # the chief's backup of epoch 1
            assert job.poll() is None and time.monotonic() < deadline, job.stdout.read()[-3000:]
            time.sleep(0.2)
        worker = next(pid for pid in _children(job.pid) if _environ_of(pid).get("DLSUITE_LOCAL_WORKER") == "1")
        os.kill(worker, signal.SIGKILL)  # in epoch 2
        first_output, _ = job.communicate(timeout=200)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode != 0, first_output[-3000:]
    (run,) = runs_in(uri)
    assert run.info.status != "FINISHED"
    result = run_cli("train", "vision", "--resume", run.info.run_id, "--workers", 2, "--tracking-uri", uri,
                     "--export-dir", tmp_path / "exports", timeout=600)
    assert result.returncode == 0, first_output[-2000:] + result.stdout[-3000:] + result.stderr[-3000:]
    assert "epoch 1/3 done" not in result.stdout  # epoch 1 came from the backup
    assert "epoch 3/3 done" in result.stdout
    (resumed,) = runs_in(uri)
    assert (resumed.info.run_id, resumed.info.status) == (run.info.run_id, "FINISHED")
    import mlflow

    history = mlflow.tracking.MlflowClient(uri).get_metric_history(run.info.run_id, "loss")
    assert sorted({metric.step for metric in history}) == [0, 1, 2]


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        return [int(child) for child in file.read().split()]


def _environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as file:
        pairs = [item.split(b"=", 1) for item in file.read().split(b"\0") if b"=" in item]
    return {key.decode(): value.decode(errors="replace") for key, value in pairs}


@pytest.mark.parametrize("task_arguments, reason", [
    (("gaming_rl",), "gaming_rl/cartpole-dqn cannot train under a tf.distribute strategy: its own loop"),
    (("vision", "--task", "gan"), "vision/gan cannot train under a tf.distribute strategy: its own train_step"),
])
def test_a_task_that_cannot_distribute_refuses_before_a_run_opens(task_arguments, reason, tracking_uri):
    from pipelines.workers import tf_configs

    result = run_cli("train", *task_arguments, "--tracking-uri", tracking_uri, env={"TF_CONFIG": tf_configs(2)[1]})
    assert result.returncode == 2, result.stderr[-3000:]
    assert reason in result.stderr
    assert "Received: TF_CONFIG with several workers or --workers" in result.stderr
    assert runs_in(tracking_uri) == []
