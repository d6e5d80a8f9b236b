"""`dlsuite ui`: the MLflow UI on the suite's tracking store, in its "Model training" view.

MLflow 3 opens on its GenAI pages. dlsuite's experiments are tagged as model development
(`mlflow.experimentKind`), the printed URL selects the "Model training" workflow, and the server
runs dlsuite's MLflow app (`pipelines.ui_app`), whose page makes that view the browser's default, so
every page reached from anywhere in the UI stays in it. The MLflow Assistant panel does not open by
itself and MLflow's telemetry is off (MLFLOW_DISABLE_TELEMETRY, unless the user set it). The server
dies with `dlsuite ui` however that ends (`pipelines.server_process`) and, unless --verbose, is quiet:
no line per request, no start-up notices.
"""

import importlib.metadata
import os
import re
import socket
import sys
import tempfile
from pathlib import Path

from shared.errors import UsageError

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"  # MLflow 3 opens such experiments on their Runs tab
TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3's sidebar switch: "Model training", not "GenAI"
APP_NAME, APP = "dlsuite", "pipelines.ui_app:create_app"  # the `mlflow.app` entry point in pyproject.toml
SERVER_DEFAULTS = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # 7 huey consumers for GenAI jobs, not needed to browse runs
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
# What MLflow's CLI prints at every start: a notice for the default (localhost-only) security settings.
SERVER_NOISE = re.compile(r"^\[MLflow\] Security middleware enabled with default settings")
STARLETTE_WARNING = "ignore:starlette.middleware.wsgi is deprecated"  # MLflow 3.17 imports it on start


def ui(port=5000, host="127.0.0.1", tracking_uri=None, verbose=False):
    check_port_free(host, port)  # first: it needs no MLflow import
    from pipelines import server_process
    from shared import tracking

    uri = tracking.resolve_tracking_uri(tracking_uri)
    tracking.check_uri_scheme(uri, "--tracking-uri" if tracking_uri else "MLFLOW_TRACKING_URI")
    url = training_view_url(host, port, _tag_model_development(uri))
    print(f"MLflow UI for {uri}: {url} (Ctrl-C to stop)", flush=True)
    with tempfile.TemporaryDirectory(prefix="dlsuite-ui-") as folder:
        return server_process.run_until_stopped(_command(uri, host, port, verbose),
                                                server_environment(folder, verbose),
                                                hide=None if verbose else SERVER_NOISE)


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


def _command(uri, host, port, verbose=False):
    from shared import tracking

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--registry-store-uri", uri,
               "--host", host, "--port", str(port), "--workers", "1", "--app-name", APP_NAME]
    if uri.startswith("sqlite:"):
        command += ["--default-artifact-root", (tracking.store_home(uri) / "artifacts").as_uri()]
    if not verbose:
        command += ["--uvicorn-opts", "--log-level warning --no-access-log"]  # no INFO line per request
    return command


def server_environment(folder, verbose=False):
    """The server's environment: SERVER_DEFAULTS (what the user set wins), dlsuite's code and app importable."""
    environment = {**SERVER_DEFAULTS, **os.environ}
    repo = str(Path(__file__).resolve().parents[1])  # the server imports the same `pipelines` as this process
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [repo, *app_search_path(folder), os.environ.get("PYTHONPATH")]))
    if not verbose:
        environment["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), STARLETTE_WARNING]))
    return environment


def app_search_path(folder):
    """Where the MLflow CLI finds the `dlsuite` app: nowhere more when dlsuite is installed with its entry point,
    else (a checkout run with `python -m pipelines.cli`, an install older than the entry point) in `folder`,
    where the entry point is written as package metadata."""
    if any(entry.value == APP for entry in importlib.metadata.entry_points(group="mlflow.app", name=APP_NAME)):
        return []
    metadata = Path(folder) / "dlsuite_ui_app-0.dist-info"
    metadata.mkdir(exist_ok=True)
    (metadata / "METADATA").write_text("Metadata-Version: 2.1\nName: dlsuite-ui-app\nVersion: 0\n")
    (metadata / "entry_points.txt").write_text(f"[mlflow.app]\n{APP_NAME} = {APP}\n")
    return [str(folder)]
