"""`dlsuite evaluate --run-id ID`: measure a run's exported SavedModel on the task's test data."""

import yaml

from pipelines import catalog
from shared import config as config_lib
from shared import tracking
from shared.errors import UsageError


def load_run_task(run_id):
    """The Task, config and data info of a finished dlsuite run."""
    run = tracking.get_run(run_id)
    app = run.data.tags.get("dlsuite.app")
    if app is None:
        raise UsageError(f"Run {run_id} was not made by `dlsuite train` (no dlsuite.app tag).")
    saved = yaml.safe_load(tracking.load_artifact_text(run_id, "config.yaml"))
    _task_name, spec = catalog.task_spec(app, saved["task"])
    config = config_lib.from_dict(spec.config_class, saved["config"], f"config.yaml of run {run_id}")
    info = tracking.load_artifact_json(run_id, "data_info.json")
    return run, catalog.load_task(spec), config, info


def evaluate(run_id, data_dir=None, tracking_uri=None):
    import mlflow

    from shared import export

    tracking.setup(tracking_uri)
    run, runner, config, _info = load_run_task(run_id)
    export_dir = run.data.tags.get("dlsuite.export_dir")
    if not export_dir:
        raise UsageError(f"Run {run_id} has no export (status {run.info.status}). Train it to completion first.")
    data_dir = runner.check_inputs(config, data_dir or run.data.tags.get("dlsuite.data_dir") or None)
    data = runner.build_data(config, data_dir)
    report = runner.evaluate(export.load_serving(export_dir), data, config)
    client = mlflow.tracking.MlflowClient()
    for key, value in report.metrics.items():
        client.log_metric(run_id, f"evaluate_{key}", value)
    return report.metrics
