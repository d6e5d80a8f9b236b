"""A dlsuite run read back from MLflow: its task, config and serving info, and how info is saved.

`info` (what `Task.endpoints` needs: `Data.info` merged with `Task.after_fit`'s values) is logged
as `data_info.json`, with numpy arrays in `data_info.npz` (read with `allow_pickle=False`), so
`dlsuite export --run-id` rebuilds exactly the endpoints training exported.
"""

import io
import tempfile
from pathlib import Path

import yaml

from pipelines import catalog
from shared import config as config_lib
from shared import tracking
from shared.errors import UsageError

INFO_JSON = "data_info.json"
INFO_ARRAYS = "data_info.npz"


def log_info(info):
    """Log `info`: JSON values to data_info.json, numpy arrays to data_info.npz."""
    import mlflow
    import numpy as np

    arrays = {key: value for key, value in info.items() if isinstance(value, np.ndarray)}
    tracking.log_json({key: value for key, value in info.items() if key not in arrays}, INFO_JSON)
    if arrays:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        tracking.warn_on_failure(INFO_ARRAYS, tracking.log_bytes, buffer.getvalue(), INFO_ARRAYS)
    else:
        mlflow.set_tag("dlsuite.info_arrays", "none")


def load_info(run_id):
    """The info a run logged, arrays included."""
    import mlflow
    import numpy as np

    info = tracking.load_artifact_json(run_id, INFO_JSON)
    if tracking.get_run(run_id).data.tags.get("dlsuite.info_arrays") == "none":
        return info
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=INFO_ARRAYS, dst_path=tmp)
        except Exception:  # noqa: BLE001 - a run whose info has no arrays
            return info
        with np.load(Path(path), allow_pickle=False) as arrays:
            return {**info, **{key: arrays[key] for key in arrays.files}}


def dlsuite_run(run_id):
    """The MLflow run, refusing one `dlsuite train` did not make."""
    run = tracking.get_run(run_id)
    if run.data.tags.get("dlsuite.app") is None:
        raise UsageError(
            f"Run {run_id} was not made by `dlsuite train` (it has no dlsuite.app tag). Received: run_id={run_id}. "
            "Expected the id of a run printed by `dlsuite train` or listed by `dlsuite ui`."
        )
    return run


def load_run_task(run_id):
    """`(run, task, config)` of a dlsuite run, the config read from its config.yaml."""
    run = dlsuite_run(run_id)
    saved = yaml.safe_load(tracking.load_artifact_text(run_id, "config.yaml"))
    return (run, *task_and_config(run.data.tags["dlsuite.app"], saved["task"], saved["config"],
                                  f"config.yaml of run {run_id}"))


def task_and_config(app, task, values, where):
    """`(task, config)` from an app, a task name and a config dict (config.yaml, an export's dlsuite.json)."""
    _task_name, spec = catalog.task_spec(app, task)
    return catalog.load_task(spec), config_lib.from_dict(spec.config_class, values, where)


def best_metric(run_id, key, mode="max"):
    """The best finite value of metric `key` over a run's history (`mode` "max" or "min"), else None."""
    import math

    values = [value for _step, value in tracking.metric_history(run_id).get(key, []) if math.isfinite(value)]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def child_runs(parent_run_id, experiment_name, tracking_uri, tags=None):
    """The runs nested under `parent_run_id` (tag `mlflow.parentRunId`) that carry every tag of `tags`."""
    from mlflow.tracking import MlflowClient

    experiment = tracking.experiment_id(experiment_name, tracking_uri)
    conditions = [f"tags.mlflow.parentRunId = '{parent_run_id}'",
                  *(f"tags.`{key}` = '{value}'" for key, value in (tags or {}).items())]
    return MlflowClient().search_runs([experiment], filter_string=" and ".join(conditions))
