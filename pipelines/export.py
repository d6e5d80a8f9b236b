"""`dlsuite export --run-id ID`: write a run's Keras model as a new SavedModel version.

The endpoints are rebuilt exactly as training built them: the logged Keras model, the run's
config and its logged info (`Data.info` and `Task.after_fit`'s values). `--set KEY=VALUE` changes
config keys that shape only the serving graph (`Task.serving_keys`: thresholds, test-time averaging).
"""

from pipelines import runs
from shared import config as config_lib
from shared import tracking
from shared.errors import UsageError


def export(run_id, export_root="exports", tracking_uri=None, overrides=()):
    import mlflow

    from pipelines.train import check_export_root
    from shared import export as export_lib
    from shared import mlflow_model

    pairs = config_lib.parse_set_pairs(overrides)
    tracking.setup(tracking_uri)
    check_export_root(export_root)
    run, runner, config = runs.load_run_task(run_id)
    if pairs:
        config = serving_config(runner, config, pairs)
    model_uri = run.data.tags.get("dlsuite.keras_model_uri")
    if not model_uri:
        raise UsageError(f"Run {run_id} has no logged Keras model (status {run.info.status}). "
                         f"Received: --run-id {run_id}. Expected a run that finished training.")
    model = mlflow_model.load_logged_keras_model(model_uri)
    endpoints = runner.endpoints(model, config, runs.load_info(run_id))
    tags = run.data.tags
    metadata = {"app": tags["dlsuite.app"], "task": tags["dlsuite.task"], "preset": tags.get("dlsuite.preset"),
                "run_id": run_id, "config": config_lib.to_dict(config), "data_source": tags.get("dlsuite.data_source")}
    path, _ = export_lib.export_version(model, endpoints, export_root, f"{tags['dlsuite.app']}-{tags['dlsuite.task']}",
                                        metadata)
    mlflow.tracking.MlflowClient().set_tag(run_id, "dlsuite.export_dir", str(path))
    return path


def serving_config(runner, config, pairs):
    """`config` with `pairs` applied, each a key of `runner.serving_keys` (else a UsageError naming them)."""
    allowed = tuple(runner.serving_keys)
    for key in pairs:
        if key not in allowed:
            keys = ", ".join(allowed) if allowed else "none"
            raise UsageError(
                f"--set {key} cannot change at export: it shapes what {runner.app}/{runner.name} trained. Received: "
                f"--set {key}={pairs[key]}. Expected a key that shapes only the serving graph ({keys}). Fix: train "
                f"again with --set {key}=..., or export with one of those keys.")
    return config_lib.apply_overrides(config, pairs, "from dlsuite export --set")
