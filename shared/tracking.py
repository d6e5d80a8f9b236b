"""MLflow tracking: the store, the run lifecycle and what every run logs.

Default store: `sqlite:///<cwd>/mlruns/mlflow.db` with artifacts in
`mlruns/artifacts/`, nothing to start. Any MLflow tracking URI works.
A run that raises is ended FAILED, one that is interrupted KILLED, with the
reason in the `failure_reason` tag. Logging of extras (plots, tables, models)
never breaks a run: failures become warnings.
"""

import contextlib
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.tracking import MlflowClient

from shared import stores
from shared.errors import Interrupted, UsageError, interrupt_reason

DEFAULT_HOME = Path("mlruns")
PACKAGES = ("tensorflow", "keras", "keras-hub", "keras-cv", "mlflow", "tensorflow-datasets", "gymnasium", "numpy")


def resolve_tracking_uri(uri=None):
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(DEFAULT_HOME / 'mlflow.db').resolve()}"


def store_home(uri):
    """The local folder of a store: where artifacts and checkpoints of a SQLite or file store live."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        return Path(uri[len("sqlite:///"):]).resolve().parent
    if parsed.scheme in ("", "file"):
        return Path(parsed.path).resolve()
    return DEFAULT_HOME.resolve()


def setup(uri=None):
    given = uri
    uri = resolve_tracking_uri(uri)
    where = "--tracking-uri" if given else "MLFLOW_TRACKING_URI"
    check_uri_scheme(uri, where)
    stores.check_store(uri, where)  # reachable, credentials accepted, folder writable: in seconds
    mlflow.set_tracking_uri(uri)
    return uri


def is_remote(uri):
    """Whether the store is shared (a server or a database), not files of this machine."""
    return urlparse(uri).scheme not in ("", "file", "sqlite")


def supported_schemes():
    """The URI schemes this MLflow (with its plugins) has a tracking store for."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        return sorted(scheme for scheme in _tracking_store_registry._registry if scheme)
    except (ImportError, AttributeError):  # a private API: fall back to MLflow 3's built-in stores
        return ["databricks", "file", "http", "https", "mssql", "mysql", "postgresql", "sqlite"]


def check_uri_scheme(uri, where="--tracking-uri"):
    """Raise UsageError unless MLflow has a tracking store for the scheme of `uri`."""
    from mlflow.utils.uri import get_uri_scheme

    scheme = get_uri_scheme(uri)
    supported = supported_schemes()
    if scheme and scheme not in supported:
        raise UsageError(
            f"Unsupported MLflow tracking URI scheme. Received: {where} {uri} (scheme {scheme!r}). "
            f"Expected a local path or one of the schemes: {', '.join(supported)}. "
            "Fix: e.g. --tracking-uri sqlite:///mlruns/mlflow.db, --tracking-uri http://localhost:5000, "
            "or omit it for the default SQLite store in ./mlruns."
        )


def experiment_id(name, uri):
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if urlparse(uri).scheme == "sqlite":
        location = (store_home(uri) / "artifacts").as_uri()
    try:  # MLflow 3's UI opens "model development" experiments on their Runs, not on its GenAI pages.
        return client.create_experiment(name, artifact_location=location,
                                        tags={"mlflow.experimentKind": "custom_model_development"})
    except mlflow.exceptions.MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id  # another process created it meanwhile


def get_run(run_id):
    try:
        return MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise UsageError(
            f"Run not found in the tracking store. Received: run_id={run_id!r}. "
            "Expected the id of a dlsuite run (printed by `dlsuite train`; see `dlsuite ui`). "
            "Pass --tracking-uri if the run lives in another store."
        ) from None


def checkpoint_dir(uri, run_id):
    return store_home(uri) / "checkpoints" / run_id


@contextlib.contextmanager
def tracked_run(experiment_name, uri, run_id=None, run_name=None, tags=None, active=True):
    """Start (or resume) a run; end it FINISHED, FAILED or KILLED with the reason.

    `active=False` creates the run without making it MLflow's active run: a parent (`dlsuite tune`)
    whose children each open their own run, nested under it by the `mlflow.parentRunId` tag.
    """

    def on_sigterm(signum, frame):
        raise Interrupted("SIGTERM")

    client = MlflowClient()
    try:  # no permission on the experiment (HTTP 403 from a server with authentication): refused here
        experiment = None if run_id else experiment_id(experiment_name, uri)
        if active:
            run = mlflow.start_run(run_id=run_id, experiment_id=experiment, run_name=run_name, tags=tags)
        else:
            run = client.create_run(experiment, run_name=run_name, tags=tags)
        if run_id and "failure_reason" in run.data.tags:
            client.delete_tag(run_id, "failure_reason")  # a resumed run starts clean
    except mlflow.exceptions.MlflowException as error:
        denied = stores.permission_error(error, f"write runs in experiment {experiment_name or run_id!r}", uri)
        if denied is None:
            raise
        if active and mlflow.active_run() is not None:
            with contextlib.suppress(Exception):
                mlflow.end_run("FAILED")
        raise denied from None
    previous = signal.signal(signal.SIGTERM, on_sigterm)

    def end(status, reason=None):
        try:
            if reason:
                client.set_tag(run.info.run_id, "failure_reason", reason[:4000])
        finally:
            if active:
                mlflow.end_run(status)
            else:
                client.set_terminated(run.info.run_id, status)

    try:
        yield run
    except KeyboardInterrupt as error:
        end("KILLED", f"interrupted: {interrupt_reason(error)}")
        raise
    except BaseException as error:
        end("FAILED", f"{type(error).__name__}: {error}")
        raise
    else:
        end("FINISHED")
    finally:
        signal.signal(signal.SIGTERM, previous)


# === What every run logs ===


def environment_tags():
    tags = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            tags[f"version.{package}"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        tags["git_commit"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        tags["git_commit"] = "unknown"
    return tags


def flatten(prefix, values):
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become comma-joined strings."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(f"{name}.", value))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(map(str, value))
        else:
            flat[name] = value
    return flat


def log_dataset_records(records):
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    for record in records:
        source = record.source if "://" in record.source else Path(record.source).resolve().as_uri()
        try:
            if source.startswith("http"):
                dataset_source = HTTPDatasetSource(source)
            else:
                from mlflow.data.dataset_source_registry import get_registered_sources

                local = next(s for s in get_registered_sources() if s.__name__ == "LocalArtifactDatasetSource")
                dataset_source = local(source)
            dataset = MetaDataset(source=dataset_source, name=f"{record.name}-{record.split}",
                                  digest=record.fingerprint[:32])
            mlflow.log_input(dataset, context=record.split,
                             tags={"records": str(record.num_records), "fingerprint": record.fingerprint,
                                   "split": record.split})
        except Exception as error:  # noqa: BLE001
            warnings.warn(f"Could not log dataset lineage for {record.name}/{record.split}: {error}")


def log_report(report):
    """Metrics, figures (PNG), tables (JSON, the MLflow table format) and files (bytes) of a `shared.app.Report`."""
    import matplotlib.pyplot as plt

    mlflow.log_metrics(report.metrics)
    for name, figure in report.figures.items():
        warn_on_failure(f"figure {name}", mlflow.log_figure, figure, name)
        plt.close(figure)
    for name, table in report.tables.items():
        warn_on_failure(f"table {name}", mlflow.log_table, table, name)
    for name, content in report.files.items():
        warn_on_failure(f"file {name}", log_bytes, content, name)


def log_bytes(content, name):
    """Log `content` (bytes) as the artifact `name` (a path such as "episode.gif" or "media/episode.gif")."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(content)
        folder = str(Path(name).parent)
        mlflow.log_artifact(str(path), artifact_path=None if folder == "." else folder)


def metric_history(run_id):
    client = MlflowClient()
    run = client.get_run(run_id)
    return {
        key: [(metric.step, metric.value) for metric in sorted(client.get_metric_history(run_id, key),
                                                               key=lambda m: (m.step, m.timestamp))]
        for key in run.data.metrics
    }


def log_json(data, name):
    warn_on_failure(name, mlflow.log_dict, data, name)


def log_text(text, name):
    warn_on_failure(name, mlflow.log_text, text, name)


def load_artifact_text(run_id, name):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=tmp)
        except Exception:  # noqa: BLE001
            raise UsageError(
                f"Run {run_id} has no {name} artifact. Expected a run made by `dlsuite train`."
            ) from None
        return Path(path).read_text()


def load_artifact_json(run_id, name):
    return json.loads(load_artifact_text(run_id, name))


def warn_on_failure(what, function, *args):
    try:
        function(*args)
    except Exception as error:  # noqa: BLE001 - logging never breaks a run
        warnings.warn(f"MLflow logging of {what} failed; the run goes on: {error}")
