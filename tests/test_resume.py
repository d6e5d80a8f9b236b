"""A training run killed with SIGKILL after its first epoch (of three) resumes in the same MLflow run."""

import signal

import mlflow

from tests.conftest import run_cli, sigkill_at, start_cli

TINY = ["--preset", "smoke", "--set", "epochs=3", "--set", "max_train_examples=512", "--set", "max_test_examples=128",
        "--set", "early_stopping_patience=0"]


def test_sigkill_after_first_epoch_then_resume(tracking_uri, tmp_path, fashion_mnist_dir):
    exports = tmp_path / "exports"
    # "Epoch 2/3" is printed once epoch 1 has ended and been checkpointed
    process = start_cli("train", "vision", *TINY, "--data-dir", fashion_mnist_dir, "--tracking-uri", tracking_uri,
                        "--export-dir", exports)
    seen = sigkill_at(process, "Epoch 2/3")
    run_id = next((line.split()[2] for line in seen if line.startswith("dlsuite: run ")), None)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    assert run_id is not None

    client = mlflow.tracking.MlflowClient(tracking_uri)
    assert client.get_run(run_id).info.status == "RUNNING"  # SIGKILL leaves no chance to mark it
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [0]
    assert not exports.exists()

    resumed = run_cli("train", "vision", "--resume", run_id, "--data-dir", fashion_mnist_dir, "--tracking-uri",
                      tracking_uri, "--export-dir", exports)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"dlsuite: run {run_id} (vision/classification, preset smoke) resumed" in resumed.stdout
    assert "Epoch 2/3" in resumed.stdout and "Epoch 1/3" not in resumed.stdout
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [0, 1, 2]
    # The optimizer state (and its step counter) came back too: the cosine schedule went on decaying
    # instead of restarting at epoch 1.
    learning_rates = [m.value for m in sorted(client.get_metric_history(run_id, "learning_rate"), key=lambda m: m.step)]
    assert len(learning_rates) == 3 and all(a > b for a, b in zip(learning_rates, learning_rates[1:])), learning_rates
    assert "test_accuracy" in run.data.metrics
    assert (exports / "vision-classification" / "1" / "saved_model.pb").is_file()
    assert len(client.search_runs([run.info.experiment_id])) == 1
    from shared.tracking import checkpoint_dir

    assert not checkpoint_dir(tracking_uri, run_id).exists()  # a FINISHED run keeps no checkpoint


def test_resuming_a_finished_run_is_refused(tracking_uri, fashion_mnist_dir):
    from pipelines.train import train

    summary = train("vision", preset="smoke", data_dir=str(fashion_mnist_dir), tracking_uri=tracking_uri,
                    export=False, overrides=["max_train_examples=256", "max_test_examples=64"])  # FINISHED is enough
    result = run_cli("train", "vision", "--resume", summary["run_id"], "--tracking-uri", tracking_uri)
    assert result.returncode == 2
    assert f"Run {summary['run_id']} already FINISHED; nothing to resume" in result.stderr
