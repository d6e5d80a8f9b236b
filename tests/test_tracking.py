"""Run lifecycle: a failure or an interrupt ends the MLflow run with its reason, never RUNNING."""

import os
import signal
import time

import mlflow
import pytest

from shared import tracking
from shared.errors import Interrupted


def test_exception_marks_run_failed_with_reason(tracking_uri):
    with pytest.raises(RuntimeError):
        with tracking.tracked_run("dlsuite-test", tracking_uri) as run:
            raise RuntimeError("disk full while writing checkpoint")
    finished = mlflow.tracking.MlflowClient().get_run(run.info.run_id)
    assert finished.info.status == "FAILED"
    assert finished.data.tags["failure_reason"] == "RuntimeError: disk full while writing checkpoint"


def test_interrupt_marks_run_killed(tracking_uri):
    with pytest.raises(KeyboardInterrupt):
        with tracking.tracked_run("dlsuite-test", tracking_uri) as run:
            raise KeyboardInterrupt()  # what Python raises on Ctrl-C: no message
    finished = mlflow.tracking.MlflowClient().get_run(run.info.run_id)
    assert finished.info.status == "KILLED"
    assert finished.data.tags["failure_reason"] == "interrupted: SIGINT (Ctrl-C)"


def test_sigterm_marks_run_killed_and_exits_143(tracking_uri):
    with pytest.raises(Interrupted) as caught:
        with tracking.tracked_run("dlsuite-test", tracking_uri) as run:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert (caught.value.signal_name, caught.value.exit_code) == ("SIGTERM", 143)
    finished = mlflow.tracking.MlflowClient().get_run(run.info.run_id)
    assert (finished.info.status, finished.data.tags["failure_reason"]) == ("KILLED", "interrupted: SIGTERM")


def test_default_store_is_sqlite_in_mlruns(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = tracking.resolve_tracking_uri()
    assert uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert tracking.store_home(uri) == tmp_path / "mlruns"
    assert tracking.checkpoint_dir(uri, "abc") == tmp_path / "mlruns" / "checkpoints" / "abc"


def test_metric_logging_failure_only_warns(tracking_uri):
    from shared.callbacks import MlflowMetricsLogger

    logger = MlflowMetricsLogger(run_id="no-such-run")
    with pytest.warns(UserWarning, match="training continues"):
        logger.on_epoch_end(0, {"loss": 1.0})


def test_epoch_metrics_are_logged_at_the_epoch_and_the_epoch_is_no_metric(tracking_uri):
    from shared.callbacks import MlflowMetricsLogger

    with tracking.tracked_run("dlsuite-test", tracking_uri) as run:
        logger = MlflowMetricsLogger(run_id=run.info.run_id)
        for epoch, loss in enumerate([0.9, 0.5]):
            logger.on_epoch_begin(epoch)
            logger.on_epoch_end(epoch, {"loss": loss, "val_loss": loss + 0.1})
    history = tracking.metric_history(run.info.run_id)
    assert set(history) == {"loss", "val_loss", "epoch_seconds"}  # no straight `epoch` line
    assert history["loss"] == [(0, 0.9), (1, 0.5)]


def test_a_dlsuite_experiment_reads_back_as_model_training(tracking_uri):
    experiment = tracking.experiment_id("dlsuite-vision", tracking_uri)
    read = mlflow.tracking.MlflowClient(tracking_uri).get_experiment_by_name("dlsuite-vision")
    assert read.experiment_id == experiment
    assert read.tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow 3's "Model training" kind
