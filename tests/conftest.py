"""Fixtures shared by every test: an isolated MLflow store, the data root, the CLI in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true", help="also run tests marked large")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large test: run with --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def close_figures():
    """Close the figures a test left open (a `Report` evaluated outside `dlsuite train`, which closes them once
    logged), so they do not pile up in the test process."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory):
    """An empty MLflow SQLite store file, made once: MLflow creates a new store's tables through its whole
    chain of schema migrations (seconds each time, in every process that opens a new store first)."""
    import contextlib

    import mlflow

    folder = tmp_path_factory.mktemp("empty-store")
    with contextlib.chdir(folder):  # the Default experiment's artifact folder: here, not in the checkout
        mlflow.tracking.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


def new_store(empty_store, folder):
    """A fresh SQLite store `folder/mlflow.db` (a copy of `empty_store`); returns its tracking URI."""
    import shutil

    Path(folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_store, Path(folder) / "mlflow.db")
    return f"sqlite:///{Path(folder) / 'mlflow.db'}"


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch, empty_store):
    """A fresh SQLite MLflow store in tmp_path; also the default for in-process calls."""
    uri = new_store(empty_store, tmp_path / "mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    return uri


IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def data_root():
    """The test datasets' folder, read from DLSUITE_DATA_DIR when the test runs (not at import)."""
    value = os.environ.get("DLSUITE_DATA_DIR")
    if not value:
        pytest.fail("DLSUITE_DATA_DIR is not set. Expected the folder of the test datasets (fsdd, ...). "
                    "Fix: DLSUITE_DATA_DIR=/path/to/shared/datasets python -m pytest ...", pytrace=False)
    root = Path(value)
    if not root.is_dir():
        pytest.fail(f"DLSUITE_DATA_DIR is not a folder. Received: DLSUITE_DATA_DIR={value}. Expected the folder "
                    "of the test datasets (fsdd, ...). Fix: point DLSUITE_DATA_DIR at shared/datasets.", pytrace=False)
    return root


def has_idx_files(folder):
    """The four Fashion-MNIST/MNIST IDX files, plain or gzipped, are in `folder`."""
    folder = Path(folder)
    return all((folder / name).is_file() or (folder / f"{name}.gz").is_file() for name in IDX_NAMES)


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    """Fashion-MNIST's IDX files: $DLSUITE_DATA_DIR/fashion_mnist, else Debian's system copy."""
    candidates = []
    if os.environ.get("DLSUITE_DATA_DIR"):
        candidates.append(Path(os.environ["DLSUITE_DATA_DIR"]) / "fashion_mnist")
    candidates.append(SYSTEM_FASHION_MNIST)
    for candidate in candidates:
        if has_idx_files(candidate):
            return candidate
    pytest.fail(f"Fashion-MNIST IDX files not found. Looked in: {', '.join(map(str, candidates))}. Fix: "
                "apt-get install -y dataset-fashion-mnist, or set DLSUITE_DATA_DIR to a folder whose "
                "fashion_mnist/ holds the four IDX files.", pytrace=False)


def cli_env(env=None):
    """The environment of a CLI subprocess: this one, unbuffered, quiet TensorFlow, this checkout first."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return full_env


def tune_outcome(stdout, tracking_uri):
    """`(MlflowClient, the parent run, its trials.json rows as dicts)` of a `dlsuite tune` run, from its output."""
    import json
    import tempfile

    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    parent_id = next(line for line in stdout.splitlines() if line.startswith("tune run id:")).split()[3]
    with tempfile.TemporaryDirectory() as folder:
        table = json.loads(Path(client.download_artifacts(parent_id, "trials.json", folder)).read_text())
    return client, client.get_run(parent_id), [dict(zip(table["columns"], row)) for row in table["data"]]


def run_cli(*args, cwd=None, env=None, timeout=600):
    """Run `python -m pipelines.cli ARGS` in a subprocess; return the CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *map(str, args)], cwd=cwd or REPO,
                          env=cli_env(env), capture_output=True, text=True, timeout=timeout)


def start_cli(*args, cwd=None, env=None):
    """Start `python -m pipelines.cli ARGS`; its stdout and stderr are one text stream (`process.stdout`)."""
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *map(str, args)], cwd=cwd or REPO,
                            env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def sigkill_at(process, prefix, timeout=120):
    """SIGKILL a `start_cli` process once it prints a line starting with `prefix`; return the lines it printed."""
    import signal

    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if line.startswith(prefix):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait(timeout=timeout)
    return seen


def runs_in(tracking_uri):
    """All runs of a store, newest first."""
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return client.search_runs(experiments, order_by=["attributes.start_time DESC"]) if experiments else []


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url, process, timeout=120):
    """Poll `url` until it answers 200; fail with the server's output if it dies or times out."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def post_json(url, body, timeout=60):
    """POST `body` as JSON; return `(status, decoded JSON answer)`, for error statuses too."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def start_cli_server(*args):
    """Start `python -m pipelines.cli ARGS` in its own process group (stop it with stop_server)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def stop_server(process):
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
