"""`dlsuite train ... --workers N`: N local worker processes on 127.0.0.1, each with its own `TF_CONFIG`.

For trying multi-worker training and for tests; on real machines the same job is N processes started by a
launcher (Kubeflow's TFJob, Slurm, ...) that sets each one's `TF_CONFIG`. Worker 0 is the chief: it opens the
MLflow run and its output is this command's output; the others' output is prefixed with `[worker i]`. When a
worker fails, the others are stopped (a collective cannot go on without it) and the job exits with the first
failure's code; `dlsuite train APP --resume RUN_ID --workers N` continues from the last backup.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from shared.errors import UsageError

WORKERS_ENVIRONMENT = "DLSUITE_LOCAL_WORKER"  # set in the workers: they must not start workers of their own
GRACE_SECONDS = 60  # after a worker fails, how long the others get to end on their own before SIGKILL


def check_workers(count):
    if not 1 <= count <= 64:
        raise UsageError(f"Invalid --workers. Received: --workers {count}. Expected an integer in [1, 64]. "
                         "Fix: --workers 2.")
    if os.environ.get(WORKERS_ENVIRONMENT):
        raise UsageError("--workers inside a local worker. Received: --workers with "
                         f"{WORKERS_ENVIRONMENT} set. Fix: drop --workers.")


def free_ports(count):
    """`count` distinct free TCP ports on 127.0.0.1 (bound together, then released for the workers)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_configs(count):
    """One `TF_CONFIG` value per local worker (a cluster of `count` workers on free ports)."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            for index in range(count)]


def initialize_store(tracking_uri=None):
    """Create the tracking store's tables (runs and registry) before the workers start: a fresh SQLite store
    initialized by two processes at once fails with "table ... already exists"."""
    from mlflow.tracking import MlflowClient

    from shared import tracking

    client = MlflowClient(tracking.setup(tracking_uri))
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


def launch(count, argv, environ=None):
    """Run `python -m pipelines.cli *argv` as `count` workers of one cluster; the exit code of the job."""
    environ = dict(os.environ if environ is None else environ)
    processes = []
    for index, tf_config in enumerate(tf_configs(count)):
        env = {**environ, "TF_CONFIG": tf_config, WORKERS_ENVIRONMENT: str(index)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *argv], env=env, start_new_session=True,
            stdout=None if index == 0 else subprocess.PIPE, stderr=None if index == 0 else subprocess.STDOUT,
            text=True))
    relays = [threading.Thread(target=_relay, args=(process.stdout, f"[worker {index}] "), daemon=True)
              for index, process in enumerate(processes) if index]
    for relay in relays:
        relay.start()
    try:
        code = _wait(processes)
    except KeyboardInterrupt:
        _signal_all(processes, signal.SIGTERM)
        code = _wait(processes)
    for relay in relays:
        relay.join(timeout=5)
    return code


def _relay(stream, prefix):
    for line in stream:
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def _wait(processes):
    """Wait for every worker; after the first failure, stop the rest. The first failure's code, else 0."""
    first_failure = None
    deadline = None
    while True:
        codes = [process.poll() for process in processes]
        if all(code is not None for code in codes):
            return first_failure or 0
        failed = [code for code in codes if code not in (None, 0)]
        if failed and first_failure is None:
            first_failure = failed[0] if failed[0] > 0 else 128 - failed[0]  # -9 (SIGKILL) -> 137
            _signal_all(processes, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_SECONDS
        if deadline is not None and time.monotonic() > deadline:
            _signal_all(processes, signal.SIGKILL)
        time.sleep(0.2)


def _signal_all(processes, signum):
    for process in processes:
        if process.poll() is None:
            process.send_signal(signum)


# === A worker that is not the chief ===


def follow(runner, config, source, strategy, chief_checkpoints=None):
    """Train as a non-chief worker: the same data, model and `fit` as the chief (every step is a collective of
    all workers), no MLflow run, no export. Its backups go to a temporary folder (TensorFlow's multi-worker
    guide: only the chief's are kept); a resumed job starts it from a copy of the chief's last backup
    (`chief_checkpoints`, which must be readable here: a shared folder on real machines)."""
    import shutil
    import tempfile
    from pathlib import Path

    import keras

    from shared import distribute
    from shared.callbacks import StopOnSignal

    if chief_checkpoints and not Path(chief_checkpoints).is_dir():
        raise UsageError(f"This worker cannot read the chief's backups to resume from. Received: {chief_checkpoints} "
                         "(missing). Expected the run's checkpoint folder, shared by every worker. Fix: put the "
                         "MLflow store (--tracking-uri) on a folder every machine mounts.")
    keras.utils.set_random_seed(config.seed)
    data = distribute.shard_data(runner.build_data(config, source), strategy)
    model = distribute.build_model(runner, config, data, strategy)
    with tempfile.TemporaryDirectory(prefix="dlsuite-worker-") as backups:
        if chief_checkpoints:
            shutil.copytree(chief_checkpoints, backups, dirs_exist_ok=True)
        with StopOnSignal().installed() as stop:
            runner.fit(model, data, config, [stop], Path(backups))
    distribute.barrier(strategy)  # until the chief has logged and exported
    return {"run_id": None, "metrics": {}, "export_dir": None, "role": "worker"}


def without_workers_flag(argv):
    """The command line each worker runs: `argv` without `--workers N`."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--workers":
            skip = True
        elif not argument.startswith("--workers="):
            kept.append(argument)
    return kept
