"""`dlsuite ui` as a user meets it: the training view from any page, a quiet server, nothing left behind.

The servers are real (`python -m pipelines.cli ui` on a free port of 127.0.0.1) and so are the
browser-side keys: they are checked against the UI bundle of the installed MLflow.
"""

import contextlib
import json
import os
import re
import signal
import socket
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from pipelines import ui, ui_app
from shared import tracking
from tests.conftest import free_port, start_cli_server, wait_for_http

GONE_SECONDS = 30  # a busy 2-core machine: MLflow's CLI waits for uvicorn's graceful shutdown


def _server_processes(port):
    """Processes whose command line holds `--port PORT` (dlsuite ui, the MLflow CLI, uvicorn)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(a == "--port" and b == str(port) for a, b in zip(args, args[1:])):
            found.append(int(entry))
    return found


def _listening(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_until_gone(port, timeout=GONE_SECONDS):
    """(listening, processes left) once nothing is left, or at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (_listening(port) or _server_processes(port)):
        time.sleep(0.5)
    return _listening(port), _server_processes(port)


@contextlib.contextmanager
def _ui(tracking_uri, *extra):
    port = free_port()
    server = start_cli_server("ui", "--port", port, "--tracking-uri", tracking_uri, *extra)  # in a new group
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", server)
        assert len(_server_processes(port)) == 3  # dlsuite ui, the MLflow CLI, uvicorn
        yield server, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # what a failing test left behind (it holds our stdout pipe)
        with contextlib.suppress(ProcessLookupError):
            for pid in _server_processes(port):
                os.kill(pid, signal.SIGKILL)
        server.wait(timeout=30)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_stops_the_whole_ui(tracking_uri, signum, code):
    with _ui(tracking_uri) as (server, port):
        server.send_signal(signum)  # to dlsuite only, as a supervisor or a closing terminal would
        server.wait(timeout=60)
        listening, left = _wait_until_gone(port)
    output = server.stdout.read()
    assert server.returncode == code, output
    assert f"http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning" in output  # no runs yet
    assert not listening and left == []


def test_kill_9_of_the_ui_leaves_no_server_behind(tracking_uri):
    with _ui(tracking_uri) as (server, port):
        server.kill()  # no handler runs: the kernel's parent-death signal stops the MLflow CLI, it stops uvicorn
        server.wait(timeout=10)
        listening, left = _wait_until_gone(port)
    assert not listening and left == []


def test_the_ui_serves_the_training_view_quietly(tracking_uri):
    experiment = tracking.experiment_id("dlsuite-vision", tracking_uri)
    with _ui(tracking_uri) as (server, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            page = response.read().decode()
        base = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get?experiment_id={experiment}"
        with urllib.request.urlopen(base, timeout=30) as response:  # what the UI reads: the experiment's kind
            tags = {tag["key"]: tag["value"] for tag in json.loads(response.read())["experiment"]["tags"]}
        server.send_signal(signal.SIGINT)  # Ctrl-C: the way to stop a UI, exit code 0
        server.wait(timeout=60)
    assert server.returncode == 0
    defaults = json.loads(re.search(r"\}\}\)\((\{.*?\})\);</script>", page).group(1))
    assert defaults == {"mlflow.workflowType_v1": "machine_learning",
                        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
                        "mlflow.telemetry.info.alert.dismissed_v1": True}  # telemetry is off: no notice
    assert page.index("localStorage") < page.index("static-files/static/js/main")  # set before the UI starts
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    # Quiet: the URL line and nothing else (no request log, no notices, no Starlette deprecation warning).
    assert server.stdout.read().splitlines() == [
        f"MLflow UI for {tracking_uri}: http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning "
        "(Ctrl-C to stop)"]


def test_the_browser_keys_are_those_the_installed_mlflow_ui_reads():
    import mlflow.server

    bundle = "".join(path.read_text(errors="replace")
                     for path in (Path(mlflow.server.__file__).parent / "js/build/static/js").glob("*.js"))
    assert "`${e}_v${t}`" in bundle and "JSON.parse" in bundle  # how the UI names and stores its keys
    for key in {**ui_app.TRAINING_VIEW_DEFAULTS, **ui_app.TELEMETRY_OFF_DEFAULTS}:
        name, version = key.rsplit("_v", 1)
        assert f'"{name}"' in bundle, key
    assert 'key:"mlflow.workflowType",version:1' in bundle and 'MACHINE_LEARNING="machine_learning"' in bundle


def test_the_ui_opens_the_training_runs_view(tracking_uri):
    experiment = tracking.experiment_id("dlsuite-vision", tracking_uri)
    client = mlflow.tracking.MlflowClient()
    assert client.get_experiment(experiment).tags["mlflow.experimentKind"] == "custom_model_development"
    client.create_run(experiment)
    assert ui._tag_model_development(tracking_uri) == experiment
    assert ui.training_view_url("127.0.0.1", 5000, experiment) == (
        f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?workflowType=machine_learning")


def test_the_server_finds_the_dlsuite_app_installed_or_from_a_checkout(tmp_path):
    import importlib.metadata

    path = ui.app_search_path(tmp_path)  # nothing when installed with the entry point, else metadata naming it
    distributions = importlib.metadata.distributions(path=path) if path else importlib.metadata.distributions()
    apps = {(entry.name, entry.value) for distribution in distributions for entry in distribution.entry_points
            if entry.group == "mlflow.app"}
    assert ("dlsuite", "pipelines.ui_app:create_app") in apps


def test_verbose_shows_the_servers_request_log_and_notices(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    quiet, verbose = ui._command(uri, "127.0.0.1", 5000), ui._command(uri, "127.0.0.1", 5000, verbose=True)
    assert quiet[quiet.index("--uvicorn-opts") + 1] == "--log-level warning --no-access-log"
    assert "--uvicorn-opts" not in verbose and verbose[verbose.index("--app-name") + 1] == "dlsuite"
    assert ui.server_environment(tmp_path)["PYTHONWARNINGS"] == ui.STARLETTE_WARNING
    assert "PYTHONWARNINGS" not in ui.server_environment(tmp_path, verbose=True)
