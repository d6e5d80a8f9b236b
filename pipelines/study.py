"""The Optuna study `dlsuite tune` workers share: storage, heartbeats, one parent run, the total trial count.

Any number of `dlsuite tune` processes, on any machines, with the same `--study-name`, arguments and
`--storage` (an Optuna RDB URL: PostgreSQL, MySQL; SQLite beside the MLflow store by default) work on
one study:
- `--trials N` is the study's total: each worker runs one trial at a time while fewer than N count
  (`counted`), then waits for the other workers' trials before it reports;
- heartbeats: a trial whose worker died (SIGKILL, a lost machine) has no heartbeat for `grace_period`
  seconds; the next worker that looks fails it, Optuna's `RetryHeartbeatStaleTrialCallback` queues
  the same params again (WAITING), which a worker then runs, and its MLflow run ends KILLED;
- one parent MLflow run per search: the worker that wins an atomic `create_study` of a marker study
  (`<study>:parent-<k>`) creates it and records its id in the study's user attrs (`parent_runs`); the
  others nest their trials under it. A later search on the same study (the parent no longer RUNNING)
  gets a parent run of its own.
"""

import contextlib
import time
import warnings

HEARTBEAT_SECONDS = 20
MAX_RETRIES = 2


def open_storage(optuna, url, heartbeat_seconds=HEARTBEAT_SECONDS):
    """An RDBStorage with heartbeats; retried once or twice: first-time table creation races between workers."""
    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5 and say so on every start
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=heartbeat_seconds, grace_period=3 * heartbeat_seconds,
                    heartbeat_stale_trial_callback=StaleTrial(optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRIES)))
        except Exception:  # noqa: BLE001 - e.g. IntegrityError: another worker created the tables meanwhile
            if attempt == 2:
                raise
            time.sleep(1 + attempt)


class StaleTrial:
    """A dead worker's trial: queue it again (`retry`) and end its MLflow run KILLED, with the reason."""

    def __init__(self, retry):
        self.retry = retry

    def __call__(self, study, trial):
        self.retry(study, trial)
        from shared import tracking

        tracking.warn_on_failure(f"ending trial {trial.number}'s run", _end_lost_run, study, trial)


def _end_lost_run(study, trial):
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    parents = study.user_attrs.get("parent_runs", [])
    if not parents:
        return
    experiment = client.get_run(parents[-1]).info.experiment_id
    found = client.search_runs([experiment], filter_string=f"tags.`dlsuite.tune.study` = '{study.study_name}' and "
                                                           f"tags.`dlsuite.tune.trial` = '{trial.number}'")
    for run in found:
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, "failure_reason", "worker lost: no heartbeat from its tune process; "
                                                              "the trial's params are queued again")
            client.set_terminated(run.info.run_id, "KILLED")


def open_study(optuna, storage, name, direction, pruner):
    for attempt in range(3):
        try:
            return optuna.create_study(study_name=name, storage=storage, direction=direction, pruner=pruner,
                                       load_if_exists=True)
        except optuna.exceptions.DuplicatedStudyError:  # created by another worker between check and insert
            if attempt == 2:
                raise
            time.sleep(0.5)


def counted(trials):
    """The trials that count toward `--trials`: all but WAITING retries and the stale trials they retry."""
    from optuna.trial import TrialState

    retried = {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}
    return [trial for trial in trials if trial.state != TrialState.WAITING and trial.number not in retried]


def optimize(optuna, study, objective, total, timeout, callbacks, poll_seconds):
    """Run trials until the study counts `total` finished ones (see the module), or `timeout` seconds."""
    from optuna.trial import TrialState

    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, and queued again
        trials = study.get_trials(deepcopy=False)
        if any(trial.state == TrialState.WAITING for trial in trials) or len(counted(trials)) < total:
            # No gc_after_trial: a full collection per trial cost seconds in a process holding many traced graphs.
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=callbacks)
        elif any(trial.state == TrialState.RUNNING for trial in trials):
            time.sleep(poll_seconds)  # another worker's trial: wait; if that worker died, retry its trial
        else:
            return


@contextlib.contextmanager
def parent_run(optuna, storage, study, open_run, wait_seconds=120):
    """Yield `(parent run, created)`: this search's parent run, created by this worker or another one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    parents = study.user_attrs.get("parent_runs", [])
    if parents and client.get_run(parents[-1]).info.status == "RUNNING":  # a worker of this search is at it
        yield client.get_run(parents[-1]), False
        return
    try:  # atomic across processes: the unique study name
        optuna.create_study(study_name=f"{study.study_name}:parent-{len(parents)}", storage=storage)
    except optuna.exceptions.DuplicatedStudyError:
        yield client.get_run(_wait_for_parent(optuna, storage, study.study_name, len(parents), wait_seconds)), False
        return
    with open_run() as run:
        study.set_user_attr("parent_runs", [*parents, run.info.run_id])
        yield run, True


def _wait_for_parent(optuna, storage, name, index, wait_seconds):
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        parents = optuna.load_study(study_name=name, storage=storage).user_attrs.get("parent_runs", [])
        if len(parents) > index:
            return parents[index]
        time.sleep(1)
    raise RuntimeError(f"The worker that won study {name}'s parent run recorded none within {wait_seconds} s.")
