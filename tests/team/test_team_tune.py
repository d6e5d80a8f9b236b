"""Several users at once on one server, and `dlsuite tune` spread over processes on one PostgreSQL study."""

import signal

import mlflow
import optuna

from tests.conftest import sigkill_at, start_cli

SLICE = ["--preset", "smoke", "--set", "max_train_examples=256", "--set", "max_test_examples=64",
         "--set", "early_stopping_patience=0", "--set", "epochs=2"]
SEARCH = ["--search", "learning_rate=1e-4..1e-2:log", "--search", "dropout_rate=0.1|0.4", "--pruner", "none"]
RUN_ARTIFACTS = {"config.yaml", "confusion_matrix.png", "data_info.json", "export", "learning_curves.png",
                 "model_summary.txt", "per_class_metrics.json", "test_samples.png"}


def _start(arguments, cwd, env):
    cwd.mkdir(parents=True, exist_ok=True)
    return start_cli(*arguments, cwd=cwd, env=env)


def _finish(process, timeout=1800):  # four TensorFlow processes on a busy machine
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


def _value(output, prefix):
    return next(line for line in output.splitlines() if line.startswith(prefix))[len(prefix):].split()[0]


def _tune_arguments(team_stack, fashion_mnist_dir, study, trials, *extra):
    return ["tune", "vision", *SLICE, *SEARCH, "--data-dir", fashion_mnist_dir, "--study-name", study,
            "--storage", team_stack.database.url("optuna"), "--trials", trials, *extra]


def test_a_training_and_two_tune_workers_at_once_lose_nothing(team_user, team_stack, tmp_path, fashion_mnist_dir):
    # Three processes write to the server at once (the training, two workers, their trial runs). One training, not
    # two: a second one ran the same code for a fourth TensorFlow process (and its export check) on 2 cores.
    study = f"together-{team_user.name}"
    training = _start(["train", "vision", *SLICE, "--data-dir", fashion_mnist_dir, "--experiment",
                       f"together-{team_user.name}", "--export-dir", "exports"], tmp_path / "alice", team_user.env)
    workers = [_start(_tune_arguments(team_stack, fashion_mnist_dir, study, 2), tmp_path / name, team_user.env)
               for name in ("worker-1", "worker-2")]
    trained = _finish(training)
    tuned = [_finish(process) for process in workers]

    client = mlflow.tracking.MlflowClient()
    run = client.get_run(_value(trained, "run id:"))
    assert run.info.status == "FINISHED"
    history = {key: len(client.get_metric_history(run.info.run_id, key)) for key in run.data.metrics}
    assert history["val_loss"] == history["val_accuracy"] == history["learning_rate"] == 2, history
    # every metric, every step: one value per epoch, or one at the end (test_*)
    assert {count for key, count in history.items() if not key.startswith("test_")} == {2}, history
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id)} == RUN_ARTIFACTS
    assert len(client.list_artifacts(run.info.run_id, "export")) >= 3  # saved_model.pb, variables, assets.extra
    assert run.data.tags["dlsuite.keras_model_uri"].startswith("models:/")  # MLflow 3: a logged model

    parents = {_value(output, "tune run id:") for output in tuned}
    assert len(parents) == 1, tuned  # one parent run for both workers
    parent_id = parents.pop()
    assert sum("joined the run of another worker" in output for output in tuned) == 1
    trials = optuna.load_study(study_name=study, storage=team_stack.database.url("optuna")).trials
    assert [trial.state.name for trial in trials] == ["COMPLETE"] * 2  # --trials 2 is the total, not each one's
    assert all(sum(f"(#{trial.number})" in output for output in tuned) == 1 for trial in trials)  # each ran once
    children = client.search_runs([client.get_run(parent_id).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(int(child.data.tags["dlsuite.tune.trial"]) for child in children) == [0, 1]
    for child in children:
        assert child.info.status == "FINISHED"
        assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) == 2
    objective = client.get_metric_history(parent_id, "trial_val_accuracy")
    assert sorted(metric.step for metric in objective) == [0, 1]


def test_a_worker_killed_mid_trial_has_its_trial_failed_by_heartbeat_and_retried(team_user, team_stack, tmp_path,
                                                                                 fashion_mnist_dir):
    study = f"killed-{team_user.name}"
    # --trials 1: the survivor finds the killed trial RUNNING and counted, waits for its heartbeat to go stale,
    # then runs its retry as the one trial (a second, new trial would test nothing more).
    arguments = _tune_arguments(team_stack, fashion_mnist_dir, study, 1, "--heartbeat", 1)
    doomed = _start(arguments, tmp_path / "doomed", team_user.env)
    seen = sigkill_at(doomed, "Epoch 1/2")  # the trial's run has started training: kill its worker
    assert doomed.returncode == -signal.SIGKILL, "".join(seen)
    storage = team_stack.database.url("optuna")
    assert [trial.state.name for trial in optuna.load_study(study_name=study, storage=storage).trials] == ["RUNNING"]

    survivor = _finish(_start(arguments, tmp_path / "survivor", team_user.env))
    trials = optuna.load_study(study_name=study, storage=storage).trials
    assert [trial.state.name for trial in trials] == ["FAIL", "COMPLETE"], survivor[-3000:]
    assert trials[1].system_attrs.get("failed_trial") == 0 and trials[1].params == trials[0].params  # ran again
    client = mlflow.tracking.MlflowClient()
    parent_id = _value(survivor, "tune run id:")
    lost = client.search_runs([client.get_run(parent_id).info.experiment_id],
                              filter_string=f"tags.`dlsuite.tune.study` = '{study}' and tags.`dlsuite.tune.trial` = '0'")
    assert [(run.info.status, run.data.tags["failure_reason"][:11]) for run in lost] == [("KILLED", "worker lost")]
