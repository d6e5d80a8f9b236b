"""`dlsuite tune`: hyperparameter search with Optuna, every trial a nested `dlsuite train` run.

The objective is the task's validation monitor (`Task.monitor_of(config)`, e.g. `val_accuracy`), the best
value in the trial run's MLflow metric history. Test metrics never choose hyperparameters.

One parent MLflow run per search (tag `dlsuite.tune=true`) holds the search space, the
per-trial objective, the best params, `best_config.yaml` (which `dlsuite train --config` accepts),
`trials.json` and `optimization_history.png`; each trial is a child run (`mlflow.parentRunId`)
trained by the normal pipeline without the SavedModel export. The Optuna study lives in
`optuna.db` beside the MLflow store (or `--storage URL`), so the same `--study-name` continues a study,
and several processes on one study share its `--trials` and its parent run (pipelines/study.py).
"""

import functools
import json
import logging
import os
import shlex
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from pipelines import catalog, runs
from pipelines import study as study_lib
from pipelines.search_space import as_set_pair, parse_search_space
from shared import config as config_lib
from shared import stores
from shared.errors import UsageError

class TuneFailed(RuntimeError):
    """The search ran but produced no result (every trial failed). The CLI prints it and exits 1."""


# === The run ===


def tune(app, task=None, preset="default", config_file=None, overrides=(), searches=(), trials=10, timeout=None,
         data_dir=None, seed=None, tracking_uri=None, experiment=None, study_name=None, best_config=None,
         pruner="median", storage=None, heartbeat=study_lib.HEARTBEAT_SECONDS):
    """Run a study to `trials` trials in all (with any other workers); return a summary (best value, params, config, runs, command)."""
    from pipelines import train as train_lib

    # Everything that can be wrong with the request is checked before a run is opened.
    task_name, spec = catalog.task_spec(app, task)
    config = train_lib.resolve_config(spec, preset, config_file, overrides, seed)
    fixed = {key: f"--set {key}={value}" for key, value in config_lib.parse_set_pairs(overrides).items()}
    if seed is not None:
        fixed["seed"] = f"--seed {seed}"
    space = parse_search_space(config, searches, fixed)
    if trials < 1:
        raise UsageError(f"Invalid --trials. Received: --trials {trials}. Expected an integer >= 1. "
                         "Fix: e.g. --trials 10.")
    if pruner not in PRUNERS:
        raise UsageError(f"Unknown pruner. Received: --pruner {pruner}. Expected one of: {', '.join(PRUNERS)}.")
    if heartbeat < 1:
        raise UsageError(f"Invalid --heartbeat. Received: --heartbeat {heartbeat}. Expected whole seconds >= 1. "
                         "Fix: e.g. --heartbeat 20.")
    if timeout is not None and not timeout > 0:
        raise UsageError(f"Invalid --timeout. Received: --timeout {timeout}. Expected seconds > 0. "
                         "Fix: e.g. --timeout 3600, or leave it out.")

    import optuna

    from shared import tracking

    uri = tracking.setup(tracking_uri)
    storage_url = storage or f"sqlite:///{tracking.store_home(uri) / 'optuna.db'}"
    stores.check_database(storage_url, "--storage")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is printed below
    storage = study_lib.open_storage(optuna, storage_url, heartbeat)
    # What a continued study must share with its first run (the monitor follows from app and task).
    identity = {"app": app, "task": task_name, "search": {key: dim.describe() for key, dim in space.items()},
                "base_config": config_lib.to_dict(config)}
    identity = json.loads(json.dumps(identity))  # as stored (tuples become lists)
    previous_trials = _check_existing_study(optuna, storage, study_name, identity)
    runner = catalog.load_task(spec)
    monitor, monitor_mode = runner.monitor_of(config)
    if getattr(config, "validation_fraction", None) == 0 and monitor.startswith("val_"):
        raise UsageError(f"Tuning needs a validation split: its objective is {monitor}. Received: "
                         "validation_fraction=0. Expected > 0. Fix: --set validation_fraction=0.1.")
    source = runner.check_inputs(config, data_dir)
    data_dir = str(source.path) if source.path else None
    direction = "maximize" if monitor_mode == "max" else "minimize"

    experiment_name = experiment or f"dlsuite-{app}"
    tags = {"dlsuite.tune": "true", "dlsuite.app": app, "dlsuite.task": task_name, "dlsuite.preset": preset,
            "dlsuite.data_source": source.uri, "dlsuite.data_dir": data_dir or "", **tracking.environment_tags()}
    study_name = study_name or f"tune-{app}-{task_name}-{uuid.uuid4().hex[:8]}"
    study = study_lib.open_study(optuna, storage, study_name, direction, _pruner(optuna, pruner))
    if "dlsuite" not in study.user_attrs:
        study.set_user_attr("dlsuite", identity)
    open_parent = functools.partial(tracking.tracked_run, experiment_name, uri, run_name=f"tune-{app}-{task_name}",
                                    tags=tags, active=False)
    with study_lib.parent_run(optuna, storage, study, open_parent) as (parent, created):
        parent_id = parent.info.run_id
        # A resumed study samples anew; a worker joining another's search samples its own configs.
        sampler_seed = (config.seed if seed is None else seed) + previous_trials + (0 if created else os.getpid())
        study.sampler = optuna.samplers.TPESampler(seed=sampler_seed)
        print(f"dlsuite: tune run {parent_id} ({app}/{task_name}, preset {preset}): {trials} trial(s) in the study, "
              f"objective {direction} {monitor}"
              + (" on validation data" if monitor.startswith("val_") else " (the task's evaluation each epoch)")
              + ("" if created else " (joined the run of another worker)"), flush=True)
        print(f"dlsuite: study {study_name!r} in {stores.hide_password(storage_url)} ({previous_trials} earlier "
              f"trial(s)); run again with --study-name {study_name} and the same arguments to add trials or another"
              " worker", flush=True)
        client = _client()
        if created:
            client.set_tag(parent_id, "dlsuite.tune.study", study_name)
            _log_params(client, parent_id, {
                **{f"search.{key}": dimension.spec for key, dimension in space.items()},
                "trials": trials, "timeout": timeout, "study_name": study_name,
                "storage": stores.hide_password(storage_url), "sampler": "TPESampler", "sampler_seed": sampler_seed,
                "pruner": pruner, "monitor": monitor, "direction": direction, "earlier_trials": previous_trials,
            })
            tracking.warn_on_failure("search_space.json", client.log_dict, parent_id, identity, "search_space.json")
            tracking.warn_on_failure("base_config.yaml", client.log_text, parent_id,
                                     config_lib.dump_yaml(app, task_name, preset, config), "base_config.yaml")

        trial_args = dict(app=app, task=task_name, preset=preset, config_file=config_file, data_dir=data_dir,
                          seed=seed, tracking_uri=uri, experiment=experiment_name, export=False,
                          parent_run_id=parent_id)
        objective = _Objective(train_lib, trial_args, list(overrides), space, (monitor, monitor_mode), study_name,
                               experiment_name)
        progress = _Progress(client, parent_id, monitor, trials)
        tensorflow_log = logging.getLogger("tensorflow")
        tensorflow_log.addFilter(_TRIALS_ARE_NOT_RETRACING)
        try:
            study_lib.optimize(optuna, study, objective, trials, timeout, [progress], poll_seconds=2)
        finally:
            tensorflow_log.removeFilter(_TRIALS_ARE_NOT_RETRACING)
            _log_study(client, parent_id, study, monitor, direction)
        invocation = dict(app=app, task=task_name, preset=preset, data_dir=data_dir, tracking_uri=tracking_uri,
                          experiment=experiment)
        summary = _finish(client, parent, study, config, space, previous_trials, monitor, best_config, invocation)
        if not created:  # the study is done; its creator may have died (it ends the run too if alive)
            client.set_terminated(parent_id, "FINISHED")
        return summary


PRUNERS = ("median", "none")


class _TrialsAreNotRetracing(logging.Filter):
    """Drops TensorFlow's "N out of the last N calls to <function> triggered tf.function retracing" warning in
    `tune`: TensorFlow counts the traces of every function made from the same code as one function's, and each
    trial builds its own model, so its train/predict functions trace once each, as they must; the warning's
    advice (fewer traces of one function) does not apply."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


_TRIALS_ARE_NOT_RETRACING = _TrialsAreNotRetracing()


def _pruner(optuna, name):
    """Median pruning: after 5 complete trials, stop a trial whose epoch (from the second on) is worse
    than the median of earlier trials at that epoch. Its run still ends FINISHED, tagged where it stopped."""
    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _check_existing_study(optuna, storage, study_name, identity):
    """Number of trials the study already has; an error if it was made for another search."""
    if not study_name or study_name not in optuna.get_all_study_names(storage):
        return 0
    study = optuna.load_study(study_name=study_name, storage=storage)
    saved = study.user_attrs.get("dlsuite")
    if saved is None:  # another worker is creating it this moment
        return len(study.trials)
    differences = [key for key in identity if saved.get(key) != identity[key]]
    if differences:
        raise UsageError(
            f"Study {study_name!r} was made for another search. Received: different {', '.join(differences)}. "
            f"Expected the arguments of its first run ({json.dumps({key: saved.get(key) for key in differences})}). "
            f"Fix: repeat those arguments, or pass a new --study-name."
        )
    return len(study.trials)


def _log_params(client, run_id, params):
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])


class _Objective:
    """Train one trial through `pipelines.train.train`; its objective is the best monitor value it logged."""

    def __init__(self, train_lib, trial_args, overrides, space, objective, study_name, experiment_name):
        self.train_lib, self.trial_args, self.overrides, self.space = train_lib, trial_args, overrides, space
        (self.monitor, self.monitor_mode), self.study_name, self.experiment_name = objective, study_name, experiment_name

    def __call__(self, trial):
        params = {key: dimension.suggest(trial) for key, dimension in self.space.items()}
        tags = {"dlsuite.tune.study": self.study_name, "dlsuite.tune.trial": str(trial.number)}
        trial.set_user_attr("parent_run_id", self.trial_args["parent_run_id"])
        if "keras" in sys.modules:  # the task loaded it: start each trial as a fresh `dlsuite train` process would
            # Without its full garbage collection: seconds per trial in a process holding many traced graphs, and
            # Python's own collector frees the previous trial's cycles anyway.
            sys.modules["keras"].backend.clear_session(free_memory=False)
        import optuna

        from shared.callbacks import TrialPruning

        pruning = TrialPruning(trial, self.monitor)
        try:
            summary = self.train_lib.train(
                overrides=[*self.overrides, *(as_set_pair(key, value) for key, value in params.items())],
                run_name=f"trial-{trial.number}", tags=tags, callbacks=[pruning], **self.trial_args,
            )
            trial.set_user_attr("run_id", summary["run_id"])
            if pruning.pruned_at is not None:
                trial.set_user_attr("pruned_at_epoch", pruning.pruned_at)
                _client().set_tag(summary["run_id"], "dlsuite.tune.pruned_at_epoch", str(pruning.pruned_at))
                raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
            best = runs.best_metric(summary["run_id"], self.monitor, self.monitor_mode)
            if best is None:
                raise ValueError(f"The trial run logged no finite {self.monitor}; it cannot be compared.")
            return best
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr("run_id", trial.user_attrs.get("run_id") or self._child_run_id(trial.number))
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:1000])
            raise

    def _child_run_id(self, number):
        """The run a failed trial opened, if it got that far."""
        found = runs.child_runs(self.trial_args["parent_run_id"], self.experiment_name,
                                self.trial_args["tracking_uri"], {"dlsuite.tune.trial": str(number)})
        return found[0].info.run_id if found else None


class _Progress:
    """After each trial: one printed line and the trial's objective (and the best so far) on the parent run."""

    def __init__(self, client, parent_id, monitor, trials):
        self.client, self.parent_id, self.monitor, self.trials = client, parent_id, monitor, trials

    def __call__(self, study, trial):
        import optuna
        from mlflow.entities import Metric

        from shared import tracking

        finished = [other for other in study_lib.counted(study.get_trials(deepcopy=False))
                    if other.state.is_finished() or other.number == trial.number]
        done = len(finished)  # of the whole study, all workers
        params = ", ".join(f"{key}={_short(value)}" for key, value in trial.params.items())
        if trial.state == optuna.trial.TrialState.COMPLETE:
            now = int(time.time() * 1000)
            metrics = [Metric(f"trial_{self.monitor}", trial.value, now, trial.number),
                       Metric(f"best_{self.monitor}", study.best_value, now, trial.number)]  # the best so far
            tracking.warn_on_failure("trial metrics", self.client.log_batch, self.parent_id, metrics)
            outcome = f"{self.monitor}={trial.value:.4f}"
        elif trial.state == optuna.trial.TrialState.PRUNED:
            outcome = f"PRUNED after epoch {trial.user_attrs.get('pruned_at_epoch')} (worse than the median)"
        else:
            outcome = f"{trial.state.name} ({trial.user_attrs.get('error', 'no reason recorded')})"
        best = _best_trial(study)
        best_text = f"best {self.monitor}={best.value:.4f} (trial {best.number})" if best else "no best yet"
        print(f"dlsuite: trial {done}/{self.trials} (#{trial.number}) {params} -> {outcome}; {best_text}", flush=True)


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _best_trial(study):
    try:
        return study.best_trial
    except ValueError:  # no COMPLETE trial yet
        return None


# === Results ===


def _trial_rows(study):
    rows = []
    for trial in study.trials:
        rows.append({"number": trial.number, "state": trial.state.name, "value": trial.value,
                     **{f"params.{key}": value for key, value in trial.params.items()},
                     "run_id": trial.user_attrs.get("run_id"), "parent_run_id": trial.user_attrs.get("parent_run_id"),
                     "error": trial.user_attrs.get("error"), "pruned_at_epoch": trial.user_attrs.get("pruned_at_epoch"),
                     "seconds": trial.duration.total_seconds() if trial.duration else None})
    return rows


def _log_study(client, parent_id, study, monitor, direction):
    """trials.json (MLflow's table format) and the optimization-history plot; also after a crash."""
    from shared import plots, tracking
    from shared.plots import plt

    plots.use_headless_backend()
    rows = _trial_rows(study)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = {column: [row.get(column) for row in rows] for column in columns}
    if rows:
        tracking.warn_on_failure("trials.json", client.log_table, parent_id, table, "trials.json")
    figure = _history_figure(study, monitor, direction)
    tracking.warn_on_failure("optimization_history.png", client.log_figure, parent_id, figure,
                             "optimization_history.png")
    plt.close(figure)


def _history_figure(study, monitor, direction):
    import optuna

    from shared import plots

    complete = [(trial.number, trial.value) for trial in study.trials
                if trial.state == optuna.trial.TrialState.COMPLETE]
    failed = [trial.number for trial in study.trials if trial.state == optuna.trial.TrialState.FAIL]
    return plots.optimization_history(complete, failed, monitor, direction)


def _finish(client, parent, study, config, space, previous_trials, monitor, best_config, invocation):
    """Log the best params and best_config.yaml on the parent run; return the summary `dlsuite tune` prints."""
    from shared import tracking

    parent_id = parent.info.run_id
    _check_a_trial_completed(study, previous_trials, monitor, parent_id)
    best = study.best_trial
    resolved = config_lib.apply_overrides(config, best.params, f"best trial {best.number}")
    searched = {key: value for key, value in config_lib.to_dict(resolved).items() if key in space}
    text = (f"# Best of study {study.study_name}: trial {best.number} (run {best.user_attrs.get('run_id')}), "
            f"{monitor}={best.value:.6g}; written by tune run {parent_id}.\n"
            + config_lib.dump_yaml(invocation["app"], invocation["task"], invocation["preset"], resolved))
    _log_params(client, parent_id, tracking.flatten("best.", searched))
    client.set_tag(parent_id, "dlsuite.tune.best_trial", str(best.number))
    client.set_tag(parent_id, "dlsuite.tune.best_run_id", str(best.user_attrs.get("run_id")))
    tracking.warn_on_failure("best_config.yaml", client.log_text, parent_id, text, "best_config.yaml")
    config_path = _local_best_config(best_config, text, parent.info.artifact_uri)
    return {"parent_run_id": parent_id, "study_name": study.study_name, "monitor": monitor,
            "best_value": best.value, "best_trial": best.number, "best_run_id": best.user_attrs.get("run_id"),
            "best_params": {key: getattr(resolved, key) for key in space},
            "best_config": config_lib.to_dict(resolved), "best_config_path": str(config_path) if config_path else None,
            "train_command": _train_command(invocation, config_path) if config_path else None,
            "trials": _trial_rows(study)}


def _check_a_trial_completed(study, previous_trials, monitor, parent_id):
    import optuna

    ours = [trial for trial in study.trials if trial.number >= previous_trials]
    if not any(trial.state == optuna.trial.TrialState.COMPLETE for trial in ours):
        errors = sorted({trial.user_attrs.get("error") or trial.state.name for trial in ours})
        raise TuneFailed(
            f"All {len(ours)} trial(s) failed, so there is no best config. Received: {'; '.join(errors)}. "
            f"Expected at least one trial with a finite {monitor}. Fix: read the failure_reason of the trial runs "
            f"under run {parent_id} (`dlsuite ui`), then narrow the search space (e.g. lower learning rates)."
        )


def _local_best_config(best_config, text, artifact_uri):
    """--best-config FILE if given, else the logged artifact when the artifact store is a local folder."""
    if best_config:
        path = Path(best_config).resolve()
        path.write_text(text)
        return path
    artifacts = urlparse(artifact_uri)
    return Path(artifacts.path) / "best_config.yaml" if artifacts.scheme in ("", "file") else None


def _train_command(invocation, config_path):
    """The `dlsuite train` command that trains (and exports) the winner."""
    words = ["dlsuite", "train", invocation["app"], "--task", invocation["task"], "--preset", invocation["preset"],
             "--config", str(config_path)]
    for flag in ("data_dir", "tracking_uri", "experiment"):
        if invocation[flag]:
            words += [f"--{flag.replace('_', '-')}", str(invocation[flag])]
    return shlex.join(words)
