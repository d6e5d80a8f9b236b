"""`dlsuite evaluate`: measure an exported SavedModel, on the run's test data or on another copy of it.

    dlsuite evaluate --run-id ID                       # the run's export on the run's data
    dlsuite evaluate --run-id ID --data-dir DIR        # the same model on other data in the same format
    dlsuite evaluate --model-dir exports/vision-classification[/3] --data-dir DIR   # no MLflow run needed
    dlsuite evaluate --run-id ID --set max_test_examples=500   # evaluation-time config (e.g. test dates)

The report names the model and the data it measured (source, splits, record counts, fingerprints).
With a run, it is logged to that run: metrics `evaluate_<metric>` (the run's first evaluation at step 0,
the next at step 1, ...) and `evaluations/<time>.json`.
"""

import contextlib
import datetime
from pathlib import Path

from pipelines import registry, runs
from shared import config as config_lib
from shared import export as export_lib
from shared import plots
from shared import tracking
from shared.errors import UsageError


def _target(run_id, model_dir, stack):
    """`(run or None, version dir, app, task, config)` from a run id and/or an export folder; a run's export
    not on this machine is downloaded from its artifacts for as long as `stack` (an ExitStack) lasts."""
    if run_id:
        run, runner, config = runs.load_run_task(run_id)
        return run, stack.enter_context(registry.local_export(run, model_dir)), runner, config
    version_dir = export_lib.resolve_version_dir(model_dir)
    metadata = export_lib.read_metadata(version_dir)
    if not {"app", "task", "config"} <= set(metadata):
        raise UsageError(
            f"The export does not say which task made it. Received: --model-dir {model_dir} (no "
            f"{export_lib.METADATA} in {version_dir}). Expected an export written by dlsuite; pass --run-id instead."
        )
    runner, config = runs.task_and_config(metadata["app"], metadata["task"], metadata["config"],
                                          f"{export_lib.METADATA} of {version_dir}")
    run = None
    if metadata.get("run_id"):
        try:
            run = tracking.get_run(metadata["run_id"])
        except UsageError:
            run = None  # the export travelled without its MLflow store: evaluate it all the same
    return run, version_dir, runner, config


def evaluate(run_id=None, model_dir=None, data_dir=None, overrides=(), tracking_uri=None):
    """Evaluate and return `{"metrics", "model", "data": {"source", "records"}}`."""
    if not run_id and not model_dir:
        raise UsageError("Nothing to evaluate. Received neither --run-id nor --model-dir. Pass one of them.")
    tracking.setup(tracking_uri)
    with contextlib.ExitStack() as stack:
        return _evaluate(*_target(run_id, model_dir, stack), data_dir, overrides)


def _evaluate(run, version_dir, runner, config, data_dir, overrides):
    pairs = config_lib.parse_set_pairs(overrides)
    if pairs:
        config = config_lib.apply_overrides(config, pairs, "from --set")
    recorded = run.data.tags.get("dlsuite.data_dir") if run else None
    source = runner.check_inputs(config, data_dir or recorded or None)

    print(f"dlsuite: evaluating {version_dir} on {source.uri}", flush=True)
    plots.use_headless_backend()
    data = runner.build_data(config, source)
    data.source = source
    report = runner.evaluate(export_lib.load_serving(version_dir), data, config)
    result = {
        "metrics": report.metrics,
        "model": str(Path(version_dir).resolve()),
        "data": {"source": source.uri, "records": [{"split": record.split, "records": record.num_records,
                                                    "fingerprint": record.fingerprint} for record in data.records]},
        "overrides": pairs,
    }
    if run is not None:
        _log_to_run(run.info.run_id, report, result)
    return result


def _log_to_run(run_id, report, result):
    """Each evaluation of a run at its own step (0, 1, ...), so the UI charts them all, not just the latest."""
    import mlflow

    client = mlflow.tracking.MlflowClient()
    step = evaluation_count(client, run_id)
    for key, value in report.metrics.items():
        client.log_metric(run_id, f"evaluate_{key}", value, step=step)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    client.log_dict(run_id, result, f"evaluations/{stamp}.json")


def evaluation_count(client, run_id):
    """How many evaluations the run has logged: the most steps any `evaluate_` metric has."""
    keys = [key for key in client.get_run(run_id).data.metrics if key.startswith("evaluate_")]
    return max((len(client.get_metric_history(run_id, key)) for key in keys), default=0)
