"""`dlsuite tune fraud`: two trials of the smoke preset on a tiny stream, through the CLI, against a temporary
store. The objective is fraud's validation monitor (`DetectionTask.monitor_of`: the validation period's average
precision, logged each epoch by `apps.fraud.validation.ValidationMetrics`), so every trial has a finite value."""

import math

import pytest

from tests.conftest import new_store, run_cli, tune_outcome
from tests.fraud.tiny_data import make_parquet_folder


def test_tune_fraud_runs_two_trials_on_the_validation_average_precision(tmp_path, empty_store):
    data_dir = make_parquet_folder(tmp_path / "transactions")
    uri = new_store(empty_store, tmp_path / "mlruns")
    result = run_cli("tune", "fraud", "--preset", "smoke", "--set", "epochs=2", "--set", "hidden_units=8",
                     "--set", "alerts_per_day=2", "--search", "learning_rate=1e-3..1e-2:log", "--search",
                     "dropout_rate=0.0|0.3", "--trials", 2, "--data-dir", data_dir, "--tracking-uri", uri)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "maximize val_average_precision" in result.stdout

    client, parent, rows = tune_outcome(result.stdout, uri)
    assert parent.info.status == "FINISHED"
    assert math.isfinite(parent.data.metrics["best_val_average_precision"])
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE"]
    assert all(math.isfinite(row["value"]) and 0 < row["value"] <= 1 for row in rows)
    for row in rows:  # each trial logged the monitor every epoch, and its objective is the best of them
        history = [metric.value for metric in client.get_metric_history(row["run_id"], "val_average_precision")]
        assert len(history) == 2 and row["value"] == pytest.approx(max(history), rel=1e-6)
