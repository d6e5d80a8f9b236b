"""`dlsuite train`: resolve the config, open an MLflow run, train, evaluate, export, verify."""

import json
import os
import shutil
from pathlib import Path

from pipelines import catalog, registry, runs
from shared import config as config_lib
from shared import distribute, precision, tracking
from shared.errors import UsageError


def resolve_config(spec, preset, config_file=None, overrides=(), seed=None):
    config = spec.preset(preset)
    if config_file:
        config = config_lib.apply_overrides(config, config_lib.load_yaml_overrides(config_file),
                                            f"from --config {config_file}")
    pairs = config_lib.parse_set_pairs(overrides)
    if pairs:
        config = config_lib.apply_overrides(config, pairs, "from --set")
    if seed is not None:
        config = config_lib.apply_overrides(config, {"seed": seed}, "from --seed")
    return config


def _resume_target(app, run_id):
    """App, task, preset and config of the run to resume, read from its config.yaml."""
    import yaml

    run = runs.dlsuite_run(run_id)
    if run.data.tags["dlsuite.app"] != app:
        raise UsageError(
            f"Run {run_id} belongs to app {run.data.tags['dlsuite.app']!r}. Received: app={app!r}. "
            f"Fix: dlsuite train {run.data.tags['dlsuite.app']} --resume {run_id}."
        )
    if run.info.status == "FINISHED":
        raise UsageError(f"Run {run_id} already FINISHED; nothing to resume. Received: --resume {run_id} (status "
                         "FINISHED). Expected a KILLED, FAILED or RUNNING run. Fix: start a new run without --resume.")
    saved = yaml.safe_load(tracking.load_artifact_text(run_id, "config.yaml"))
    task_name, spec = catalog.task_spec(app, saved["task"])
    config = config_lib.from_dict(spec.config_class, saved["config"], f"config.yaml of run {run_id}")
    return task_name, spec, saved["preset"], config, run


def check_export_root(export_root):
    """The export root must be a folder or creatable: checked before training, not after it."""
    root = Path(export_root)
    for parent in (root, *root.parents):
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(
                    f"The export root is not a folder. Received: --export-dir {export_root} ({parent} is a file). "
                    "Expected a folder (created if missing) such as ./exports. Fix: pass another --export-dir."
                )
            break


def check_summary_json(summary_json):
    """--summary-json must be a writable file in an existing folder: checked before training, not after it."""
    path = Path(summary_json)
    folder = path.parent
    problem = ("its folder does not exist" if not folder.is_dir() else "it is a folder" if path.is_dir() else
               "it cannot be written" if not os.access(path if path.exists() else folder, os.W_OK) else None)
    if problem:
        raise UsageError(f"Cannot write the summary file: {problem}. Received: --summary-json {summary_json}. "
                         "Expected a file path in an existing, writable folder. Fix: create the folder or pass another "
                         "--summary-json.")


def train(app, task=None, preset="default", config_file=None, overrides=(), data_dir=None, seed=None,
          tracking_uri=None, experiment=None, resume=None, export_root="exports", summary_json=None,
          export=True, parent_run_id=None, run_name=None, tags=None, callbacks=()):
    """Train one run. `export=False` skips the SavedModel export and its verification (tuning trials);
    `parent_run_id` nests the run under that run (the `mlflow.parentRunId` tag); `tags` are extra run tags;
    `callbacks` are extra Keras callbacks for the training loop (tuning trials' pruning)."""
    # Everything that can be wrong with the request is checked before a run is opened.
    uri = tracking.setup(tracking_uri)
    if export:
        check_export_root(export_root)
    if summary_json:
        check_summary_json(summary_json)
    if resume:
        ignored = [flag for flag, value in (("--task", task), ("--preset", preset != "default" and preset),
                                            ("--config", config_file), ("--set", overrides), ("--seed", seed),
                                            ("--experiment", experiment)) if value]
        if ignored:
            raise UsageError(
                f"{', '.join(ignored)} cannot change a resumed run: it continues with its own config.yaml. "
                f"Received: --resume {resume} with {', '.join(ignored)}. Fix: drop {', '.join(ignored)}, or start "
                "a new run (e.g. --config with the run's config.yaml and the changes) instead of resuming."
            )
        task_name, spec, preset, config, previous = _resume_target(app, resume)
        # The folder the run read (kind "files"); other sources (TFDS, environments) resolve again.
        data_dir = data_dir or previous.data.tags.get("dlsuite.data_dir") or None
        experiment_name = None
    else:
        task_name, spec = catalog.task_spec(app, task)
        config = resolve_config(spec, preset, config_file, overrides, seed)
        experiment_name = experiment or f"dlsuite-{app}"
    job = distribute.plan(getattr(config, "distribution", "auto"))  # a bad TF_CONFIG stops here: no run yet
    runner = catalog.load_task(spec)
    distribute.check_task(runner, job, f"{app}/{task_name}")
    strategy = job.start()  # before any other TensorFlow op: collective ops are configured once
    source = runner.check_inputs(config, data_dir)
    precision.check_supported(runner, config)
    if not job.is_chief:  # only the chief opens the run, logs and exports; every worker trains in its precision
        from pipelines import workers

        with precision.applied(config):
            return workers.follow(runner, config, source, strategy, resume and tracking.checkpoint_dir(uri, resume))

    run_tags = {"dlsuite.app": app, "dlsuite.task": task_name, "dlsuite.preset": preset,
                "dlsuite.data_source": source.uri, "dlsuite.data_dir": str(source.path or ""),
                **tracking.environment_tags(), **distribute.tags(job), **(tags or {})}
    if parent_run_id:
        run_tags["mlflow.parentRunId"] = parent_run_id  # what MLflow's nested runs set: the UI nests it
    run_name = None if resume else (run_name or f"{app}-{task_name}-{preset}")
    from shared import checkpoint_sync  # Keras: imported once the request is known to be good

    if resume and checkpoint_sync.download(resume, tracking.checkpoint_dir(uri, resume)):
        say(f"downloaded the checkpoints of run {resume} from its artifacts")  # killed on another machine
    with tracking.tracked_run(experiment_name, uri, run_id=resume, run_name=run_name, tags=run_tags) as run, \
            precision.applied(config):
        summary = _run(app, task_name, preset, config, runner, source, uri, run.info.run_id, bool(resume),
                       export_root if export else None, summary_json, callbacks, strategy)
    distribute.barrier(strategy)  # the other workers wait for this
    # Checkpoints outlive every failure (a failed export resumes without retraining); a FINISHED run
    # cannot be resumed, so its checkpoints go.
    shutil.rmtree(tracking.checkpoint_dir(uri, summary["run_id"]), ignore_errors=True)
    if tracking.is_remote(uri):
        checkpoint_sync.delete(summary["run_id"])
    return summary


def say(message):
    print(f"dlsuite: {message}", flush=True)


def _run(app, task_name, preset, config, runner, source, uri, run_id, resumed, export_root, summary_json,
         extra_callbacks=(), strategy=None):
    import keras
    import mlflow

    from shared import checkpoint_sync, export, plots
    from shared.callbacks import MlflowMetricsLogger, StopOnSignal

    say(f"run {run_id} ({app}/{task_name}, preset {preset}){' resumed' if resumed else ''}; data: {source.uri}")
    plots.use_headless_backend()
    if not resumed:
        mlflow.log_params(tracking.flatten("", config_lib.to_dict(config)))
        tracking.log_text(config_lib.dump_yaml(app, task_name, preset, config), "config.yaml")
    keras.utils.set_random_seed(config.seed)

    say("loading data")
    data = distribute.shard_data(runner.build_data(config, source), strategy)
    data.source = source
    if not resumed:
        tracking.log_dataset_records(data.records)
        runs.log_info(data.info)  # again after fit with after_fit's values; here so a failed run has it
    model = distribute.build_model(runner, config, data, strategy)
    summary_lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: summary_lines.append(line))
    tracking.log_text("\n".join(summary_lines), "model_summary.txt")

    checkpoints = tracking.checkpoint_dir(uri, run_id)
    checkpoints.mkdir(parents=True, exist_ok=True)
    # A shared store keeps the checkpoints in the run's artifacts too: `--resume` from another machine.
    upload = [checkpoint_sync.CheckpointUpload(run_id, checkpoints)] if tracking.is_remote(uri) else []
    with StopOnSignal().installed() as stop:
        runner.fit(model, data, config, [MlflowMetricsLogger(run_id, step_key=runner.step_key), *upload,
                                         *extra_callbacks, stop], checkpoints)

    history = tracking.metric_history(run_id)
    figure = plots.learning_curves({key: values for key, values in history.items()})
    tracking.warn_on_failure("learning curves", mlflow.log_figure, figure, "learning_curves.png")
    import matplotlib.pyplot as plt

    plt.close(figure)  # tuning trials train many runs in one process

    info = {**data.info, **runner.after_fit(model, data, config)}
    data.info = info
    runs.log_info(info)
    endpoints = runner.endpoints(model, config, info)
    say("evaluating on the test data")
    report = runner.evaluate(export.serve_in_memory(endpoints), data, config)
    tracking.log_report(report)
    # Also without an export (a tuning trial), `dlsuite export --run-id` exports the run from this model.
    say("logging the Keras model to MLflow")
    mlflow.set_tag("dlsuite.keras_model_uri", _log_keras_model(runner, model, data) or "")
    export_dir = None
    if export_root is not None:
        metadata = {"app": app, "task": task_name, "preset": preset, "run_id": run_id,
                    "config": config_lib.to_dict(config), "data_source": source.uri}
        export_dir = _export_and_verify(app, task_name, runner, model, endpoints, data, export_root, metadata)
        if tracking.is_remote(uri):  # what `evaluate --run-id` and `promote` download on any machine
            say("uploading the SavedModel to the run's artifacts")
            mlflow.log_artifacts(str(export_dir), registry.EXPORT_ARTIFACT)
        headline = runner.headline_metric(config)[0]
        registry.register(run_id, f"{app}-{task_name}", export_dir, report.metrics, headline)

    summary = {"run_id": run_id, "metrics": report.metrics, "export_dir": str(export_dir) if export_dir else None,
               "config": config_lib.to_dict(config), "app": app, "task": task_name, "preset": preset,
               "data_source": source.uri}
    if summary_json:
        Path(summary_json).write_text(json.dumps(summary, indent=2))
    return summary


def _export_and_verify(app, task_name, runner, model, endpoints, data, export_root, metadata):
    """Write the SavedModel atomically, verified in a fresh process before it takes its version number."""
    import mlflow

    from shared import export

    serving = export.serve_in_memory(endpoints)
    cases = {signature: (inputs, serving[signature](**inputs))
             for signature, inputs in runner.signature_examples(data).items()}
    say(f"exporting the SavedModel and checking {', '.join(sorted(cases))} in a fresh process")
    export_dir, differences = export.export_version(
        model, endpoints, export_root, f"{app}-{task_name}", metadata,
        check=lambda folder: export.verify_in_fresh_process(folder, cases))
    largest = max((value for outputs in differences.values() for value in outputs.values()), default=0.0)
    mlflow.set_tags({"dlsuite.export_dir": str(export_dir),
                     "dlsuite.verified_signatures": ",".join(sorted(differences)),
                     "dlsuite.export_max_abs_difference": f"{largest:.3g}"})  # a check, not a curve: a tag
    return export_dir


def _log_keras_model(runner, model, data):
    """The Keras flavor, with the code of its custom objects: it loads with plain MLflow (`shared.mlflow_model`)."""
    import keras
    from mlflow.models import infer_signature

    from shared import mlflow_model

    try:
        example = runner.model_example(data)
        output = keras.tree.map_structure(keras.ops.convert_to_numpy, model(example, training=False))
        return mlflow_model.log_model(model, name="model", signature=infer_signature(example, output)).model_uri
    except Exception as error:  # noqa: BLE001 - the export below is the serving artifact of record
        import warnings

        warnings.warn(f"Logging the Keras model to MLflow failed; the run goes on: {error}")
        return None
