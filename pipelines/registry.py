"""The MLflow model registry: every `dlsuite train` run a version of `<app>-<task>`, and the champion gate.

A finished training run registers its logged Keras model as a new version of the registered model
`<app>-<task>` (e.g. `vision-classification`), tagged with its run id, export folder and test metrics;
tuning trials do not register. `dlsuite promote NAME --version N` (pipelines/promote.py) moves the
alias `champion` to a version that beats the current one.

With a shared store the verified SavedModel is also in the run's artifacts (`export/`), so any machine
can evaluate, promote or serve a version: `local_export` downloads it when the folder is not here.
"""

import contextlib
import tempfile
from pathlib import Path

from shared import export as export_lib
from shared import tracking
from shared.errors import UsageError

EXPORT_ARTIFACT = "export"
CHAMPION = "champion"
PREVIOUS = "previous-champion"


def register(run_id, name, export_dir, metrics, headline_metric):
    """Register the run's logged Keras model as a new version of `name` (a failure only warns)."""
    tracking.warn_on_failure(f"model registration ({name})", _register, run_id, name, export_dir, metrics,
                             headline_metric)


def _register(run_id, name, export_dir, metrics, headline_metric):
    import mlflow

    client = mlflow.tracking.MlflowClient()
    model_uri = client.get_run(run_id).data.tags.get("dlsuite.keras_model_uri")
    if not model_uri:
        raise ValueError(f"run {run_id} logged no Keras model")
    tags = {"dlsuite.run_id": run_id, "dlsuite.export_dir": str(export_dir), "dlsuite.headline_metric": headline_metric,
            **{f"dlsuite.metric.{key}": f"{value:.6g}" for key, value in metrics.items()}}
    try:  # concurrent first runs of a task race to create it: the loser uses the winner's
        client.create_registered_model(name, tags={"dlsuite.registered_by": "dlsuite train"},
                                       description="Versions trained by `dlsuite train`; alias champion: the "
                                                   "one `dlsuite promote` let through.")
    except mlflow.exceptions.MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    logged_model = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(name, source=model_uri, run_id=run_id, tags=tags, model_id=logged_model,
                                          description=f"dlsuite train run {run_id}")
    mlflow.set_tag("dlsuite.registered_version", f"{name}/{version.version}")
    print(f"dlsuite: registered as model {name} version {version.version}", flush=True)


@contextlib.contextmanager
def local_export(run, export_dir=None):
    """The run's SavedModel version folder on this machine: its export folder if present, else downloaded."""
    if export_dir:  # given (--model-dir): that folder and no other
        yield export_lib.resolve_version_dir(export_dir)
        return
    export_dir = run.data.tags.get("dlsuite.export_dir")
    if export_dir and Path(export_dir).is_dir():
        yield export_lib.resolve_version_dir(export_dir)
        return
    import mlflow

    client = mlflow.tracking.MlflowClient()
    run_id = run.info.run_id
    if not client.list_artifacts(run_id, EXPORT_ARTIFACT):
        raise UsageError(
            f"Run {run_id} has no export here or in its artifacts. Received: --run-id {run_id} (export folder "
            f"{export_dir or 'none'}, status {run.info.status}). Expected a run trained to completion. Fix: run "
            "on the machine that trained it, or `dlsuite export --run-id` it first."
        )
    with tempfile.TemporaryDirectory(prefix="dlsuite-export-") as tmp:
        print(f"dlsuite: downloading the SavedModel of run {run_id} from its artifacts", flush=True)
        yield Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=EXPORT_ARTIFACT, dst_path=tmp))
