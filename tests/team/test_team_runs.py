"""Against a real PostgreSQL-backed `mlflow server` with basic-auth and proxied artifacts: train, evaluate,
export and resume work with nothing shared but the server, and bad input is refused before work starts."""

import signal
from pathlib import Path

import mlflow
import pytest

from tests.conftest import free_port, run_cli, sigkill_at, start_cli

TINY = ["--preset", "smoke", "--set", "max_train_examples=512", "--set", "max_test_examples=128",
        "--set", "early_stopping_patience=0"]


def _one_error_line(result):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("dlsuite: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def _machine(tmp_path, name, team_user):
    """A working folder with its own HOME: another machine, as far as dlsuite can tell."""
    folder = tmp_path / name
    (folder / "home").mkdir(parents=True)
    return folder, {**team_user.env, "HOME": str(folder / "home")}


def test_killed_run_resumes_on_another_machine_from_the_servers_checkpoints(team_user, tmp_path, fashion_mnist_dir,
                                                                              monkeypatch, capsys):
    from pipelines.evaluate import evaluate
    from pipelines.export import export

    first, first_env = _machine(tmp_path, "first", team_user)
    # "Epoch 2/2": epoch 1 ended, was checkpointed and uploaded
    # An experiment of this user's own: deleting a FINISHED run's checkpoints needs MANAGE on the experiment, which
    # its creator has (dlsuite-vision may have been created by another test's user).
    process = start_cli("train", "vision", *TINY, "--set", "epochs=2", "--data-dir", fashion_mnist_dir,
                        "--experiment", f"resume-{team_user.name}", "--export-dir", "exports", cwd=first,
                        env=first_env)
    seen = sigkill_at(process, "Epoch 2/2")
    run_id = next((line.split()[2] for line in seen if line.startswith("dlsuite: run ")), None)
    assert process.returncode == -signal.SIGKILL and run_id, "".join(seen)

    client = mlflow.tracking.MlflowClient()
    assert client.get_run(run_id).info.status == "RUNNING"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [0]
    assert {a.path for a in client.list_artifacts(run_id, "checkpoints")} >= {
        "checkpoints/latest.weights.h5", "checkpoints/training_metadata.json"}

    second, second_env = _machine(tmp_path, "second", team_user)
    resumed = run_cli("train", "vision", "--resume", run_id, "--data-dir", fashion_mnist_dir, "--export-dir",
                      "exports", cwd=second, env=second_env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"downloaded the checkpoints of run {run_id} from its artifacts" in resumed.stdout
    assert "Epoch 2/2" in resumed.stdout and "Epoch 1/2" not in resumed.stdout
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [0, 1]  # the same run, no epoch lost
    assert (second / "exports" / "vision-classification" / "1" / "saved_model.pb").is_file()
    assert not (first / "exports").exists()
    assert client.list_artifacts(run_id, "checkpoints") == []  # a FINISHED run keeps no checkpoint
    assert "saved_model.pb" in {a.path.split("/")[-1] for a in client.list_artifacts(run_id, "export")}
    name, version = run.data.tags["dlsuite.registered_version"].split("/")
    tags = client.get_model_version(name, version).tags
    assert (name, tags["dlsuite.run_id"]) == ("vision-classification", run_id)
    assert float(tags["dlsuite.metric.test_accuracy"]) == pytest.approx(run.data.metrics["test_accuracy"], rel=1e-5)

    # evaluate and export (in this process) on a third machine, the second one's export folder gone: the
    # SavedModel and the Keras model come through the server.
    third, third_env = _machine(tmp_path, "third", team_user)
    (second / "exports").rename(second / "gone")
    monkeypatch.chdir(third)
    monkeypatch.setenv("HOME", third_env["HOME"])
    evaluated = evaluate(run_id=run_id)
    assert f"downloading the SavedModel of run {run_id}" in capsys.readouterr().out
    assert evaluated["metrics"]["test_accuracy"] == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)
    exported = Path(export(run_id, export_root="exports")).resolve()
    assert exported == third / "exports" / "vision-classification" / "1" and (exported / "saved_model.pb").is_file()


def test_bad_server_address_credentials_and_databases_exit_2_at_once(team_user, team_stack, tmp_path):
    port = free_port()
    line = _one_error_line(run_cli("train", "vision", "--tracking-uri", f"http://127.0.0.1:{port}", cwd=tmp_path))
    assert f"No MLflow tracking server answers. Received: --tracking-uri http://127.0.0.1:{port}" in line

    line = _one_error_line(run_cli("evaluate", "--run-id", "abc", cwd=tmp_path,
                                   env={"MLFLOW_TRACKING_PASSWORD": "wrong-password"}))
    assert f"refused the credentials (HTTP 401). Received: MLFLOW_TRACKING_URI {team_user.uri} with " \
           f"MLFLOW_TRACKING_USERNAME={team_user.name} and its password" in line

    missing = f"postgresql+psycopg://dlsuite@127.0.0.1:{team_stack.database.port}/no_such_database"
    line = _one_error_line(run_cli("train", "vision", "--tracking-uri", missing, cwd=tmp_path))
    assert "The database does not connect. Received: --tracking-uri postgresql+psycopg://dlsuite@127.0.0.1:" in line
    assert 'database "no_such_database" does not exist' in line

    line = _one_error_line(run_cli("tune", "vision", "--search", "dropout_rate=0.1|0.4", "--storage",
                                   f"postgresql://nobody:pw@127.0.0.1:{port}/optuna", cwd=tmp_path))
    assert f"The database does not connect. Received: --storage postgresql://nobody:***@127.0.0.1:{port}/optuna" in line

    line = _one_error_line(run_cli("train", "vision", "--tracking-uri", "sqlite:////proc/nope/x.db", cwd=tmp_path))
    assert "The SQLite store's folder cannot be written. Received: --tracking-uri sqlite:////proc/nope/x.db" in line


def test_no_permission_on_the_experiment_exits_2_before_training(team_user, team_stack, tmp_path, fashion_mnist_dir):
    from mlflow.server.auth.client import AuthServiceClient

    from tests.team.stack import _credentials

    with _credentials(*team_user.admin):
        experiment = mlflow.tracking.MlflowClient().create_experiment(f"locked-{team_user.name}")
        # (a positive grant below the server's default permission is raised to it: DENY vetoes)
        AuthServiceClient(team_user.uri).grant_user_permission(team_user.name, "experiment", experiment,
                                                               "DENY")
    line = _one_error_line(run_cli("train", "vision", *TINY, "--data-dir", fashion_mnist_dir, "--experiment",
                                   f"locked-{team_user.name}", cwd=tmp_path))
    assert (f"No permission to write runs in experiment 'locked-{team_user.name}' on the MLflow server (HTTP 403). "
            f"Received: --tracking-uri {team_user.uri} as {team_user.name}") in line
    with _credentials(*team_user.admin):
        assert mlflow.tracking.MlflowClient().search_runs([experiment]) == []
