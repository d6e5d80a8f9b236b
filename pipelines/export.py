"""`dlsuite export --run-id ID`: write a run's Keras model as a new SavedModel version."""

from pipelines.evaluate import load_run_task
from shared import tracking
from shared.errors import UsageError


def export(run_id, export_root="exports", tracking_uri=None):
    import mlflow

    from shared import export as export_lib

    tracking.setup(tracking_uri)
    run, runner, _config, info = load_run_task(run_id)
    model_uri = run.data.tags.get("dlsuite.keras_model_uri")
    if not model_uri:
        raise UsageError(f"Run {run_id} has no logged Keras model (status {run.info.status}).")
    model = mlflow.keras.load_model(model_uri, custom_objects=runner.custom_objects() or None)
    endpoints = runner.endpoints(model, info)
    name = f"{run.data.tags['dlsuite.app']}-{run.data.tags['dlsuite.task']}"
    path = export_lib.next_version_dir(export_root, name).resolve()
    export_lib.write_saved_model(model, endpoints, path)
    mlflow.tracking.MlflowClient().set_tag(run_id, "dlsuite.export_dir", str(path))
    return path
