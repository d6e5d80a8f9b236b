"""`dlsuite ui`: the MLflow UI on the suite's tracking store, opened on the model-training view.

The server runs in its own process group: on Ctrl-C or SIGTERM the whole group (the MLflow CLI,
uvicorn and any helpers) is stopped and waited for, so no listener outlives `dlsuite ui`.
MLflow 3 opens on its GenAI pages; dlsuite's experiments are tagged as model development
(`mlflow.experimentKind`) and the printed URL selects the "Model training" workflow.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from shared.errors import Interrupted, UsageError

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"  # MLflow 3 opens such experiments on their Runs tab
TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3's sidebar switch: "Model training", not "GenAI"
STOP_SECONDS = 15


def ui(port=5000, host="127.0.0.1", tracking_uri=None):
    check_port_free(host, port)  # first: it needs no MLflow import
    from shared import tracking

    uri = tracking.resolve_tracking_uri(tracking_uri)
    tracking.check_uri_scheme(uri, "--tracking-uri" if tracking_uri else "MLFLOW_TRACKING_URI")
    url = training_view_url(host, port, _tag_model_development(uri))
    print(f"MLflow UI for {uri}: {url} (Ctrl-C to stop)", flush=True)
    return run_until_stopped(_command(uri, host, port), _server_environment())


def check_port_free(host, port):
    """Raise UsageError if `host:port` cannot be bound (MLflow would only say so deep in its log)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UsageError(
                f"Cannot listen on {host}:{port}: {error.strerror or error}. Received: --port {port} --host {host}. "
                f"Expected a free port. Fix: pick another one (e.g. --port {port + 1}), or stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'` shows it)."
            ) from None


def training_view_url(host, port, experiment_id=None):
    """The runs of `experiment_id` (else the experiments list), in the "Model training" workflow."""
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    page = f"experiments/{experiment_id}/runs" if experiment_id else "experiments"
    return f"http://{shown}:{port}/#/{page}?{TRAINING_VIEW}"


def _tag_model_development(uri):
    """Tag dlsuite's experiments as model development; return the id of the one with the latest run."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        experiments = client.search_experiments(filter_string="name LIKE 'dlsuite-%'")
        for experiment in experiments:
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before dlsuite tagged experiments at creation
                client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT)
        latest = client.search_runs([experiment.experiment_id for experiment in experiments],
                                    order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
        return latest[0].info.experiment_id if latest else None
    except Exception:  # noqa: BLE001 - the UI opens all the same, on the experiments list
        return None


def _command(uri, host, port):
    from shared import tracking

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
    if uri.startswith("sqlite:"):
        command += ["--default-artifact-root", (tracking.store_home(uri) / "artifacts").as_uri()]
    return command


def _server_environment():
    # MLflow 3's job runner (7 huey consumers for GenAI jobs) is not needed to browse training runs.
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get(
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")}


def run_until_stopped(command, env=None):
    """Run `command` in its own process group until it exits or we get SIGINT/SIGTERM; then stop the group.

    Returns the server's exit code, 0 after Ctrl-C (the way to stop a UI) and 143 after SIGTERM.
    """
    def on_signal(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        server = subprocess.Popen(command, env=env, start_new_session=True)
        return server.wait()
    except Interrupted as interrupt:
        return 0 if interrupt.signal_name == "SIGINT" else interrupt.exit_code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if server is not None:
            stop_group(server)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_group(process, timeout=STOP_SECONDS):
    """SIGTERM the process group of `process`, wait for all of it, SIGKILL what is left after `timeout`."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        if _wait_group(process, timeout):
            break
    process.poll()


def _wait_group(process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reap the leader
        if not group_alive(process.pid):
            return True
        time.sleep(0.2)
    return False


def group_alive(pgid):
    """Whether a process of group `pgid` still runs (zombies waiting for init to reap them do not count)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in filter(str.isdigit, entries):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
