"""The model registry and the champion gate: on the team server (scored through MLflow downloads) and on the
local SQLite store. Two real tiny vision runs: a weak one (1 epoch at a learning rate of 1e-6) and a stronger one."""

import json

import mlflow
import pytest

from pipelines.promote import promote
from pipelines.train import train
from shared.errors import UsageError

TINY = ["max_test_examples=128", "early_stopping_patience=0"]
WEAK = [*TINY, "max_train_examples=128", "epochs=1", "learning_rate=1e-6"]
STRONG = [*TINY, "max_train_examples=1024", "epochs=2"]
NAME = "vision-classification"


def _version(run_id):
    name, number = mlflow.tracking.MlflowClient().get_run(run_id).data.tags["dlsuite.registered_version"].split("/")
    assert name == NAME
    return int(number)


def _aliases():
    client = mlflow.tracking.MlflowClient()
    return {alias: int(client.get_model_version_by_alias(NAME, alias).version)
            for alias in ("champion", "previous-champion") if alias in client.get_registered_model(NAME).aliases}


def _promotion(version):
    return json.loads(mlflow.tracking.MlflowClient().get_model_version(NAME, str(version)).tags["dlsuite.promotion"])


def test_promote_accepts_refuses_forces_and_rolls_back(team_user, tmp_path, monkeypatch, fashion_mnist_dir):
    monkeypatch.chdir(tmp_path)
    common = dict(preset="smoke", data_dir=str(fashion_mnist_dir), export_root=str(tmp_path / "exports"))
    weak, strong = (_version(train("vision", overrides=overrides, **common)["run_id"]) for overrides in (WEAK, STRONG))
    version_tags = mlflow.tracking.MlflowClient().get_model_version(NAME, str(strong)).tags
    assert {"dlsuite.run_id", "dlsuite.export_dir", "dlsuite.metric.test_accuracy"} <= set(version_tags)
    assert version_tags["dlsuite.headline_metric"] == "test_accuracy"
    (tmp_path / "exports").rename(tmp_path / "elsewhere")  # scored from the SavedModels on the server

    assert promote(NAME, weak)["decision"] == "first champion"
    accepted = promote(NAME, strong)
    assert (accepted["decision"], accepted["metric"], accepted["mode"]) == ("accepted", "test_accuracy", "max")
    assert accepted["challenger_score"] > accepted["champion_score"]
    assert _aliases() == {"champion": strong, "previous-champion": weak}

    # In this process (a CLI subprocess would start TensorFlow and score both versions again for the same check;
    # the CLI's exit code 2 for a UsageError is tested in tests/test_cli.py and tests/team/test_team_runs.py).
    with pytest.raises(UsageError, match=rf"^Version {weak} does not beat the champion\. Received: ") as refused:
        promote(NAME, weak)
    assert (f"Version {weak} does not beat the champion. Received: test_accuracy={_promotion(weak)['challenger_score']:.6g}"
            f" for version {weak}, {accepted['challenger_score']:.6g} for champion version {strong}") in str(refused.value)
    assert _promotion(weak)["decision"] == "refused" and _aliases()["champion"] == strong

    assert promote(NAME, weak, force=True)["decision"] == "forced"
    assert _aliases() == {"champion": weak, "previous-champion": strong}
    assert _promotion(weak)["champion_version"] == strong
    assert promote(NAME, rollback=True)["decision"] == "rollback"
    assert _aliases() == {"champion": strong, "previous-champion": weak}


def test_local_store_registers_every_training_run(tracking_uri, tmp_path, fashion_mnist_dir):
    summary = train("vision", preset="smoke", data_dir=str(fashion_mnist_dir), export_root=str(tmp_path / "exports"),
                    overrides=[*TINY, "max_train_examples=256", "epochs=1"])
    version = mlflow.tracking.MlflowClient().get_model_version(NAME, "1")
    assert version.run_id == summary["run_id"] == version.tags["dlsuite.run_id"]
    assert version.tags["dlsuite.export_dir"] == summary["export_dir"]
    assert float(version.tags["dlsuite.metric.test_accuracy"]) == pytest.approx(summary["metrics"]["test_accuracy"],
                                                                               rel=1e-5)
    with pytest.raises(UsageError, match=r"^Nothing to roll back to\. Received: --rollback for vision-classification"):
        promote(NAME, rollback=True)
    with pytest.raises(UsageError, match=r"^Model vision-classification has no version 7\. Received: --version 7\. "
                                         r"Expected 1\.\.1"):
        promote(NAME, 7)
    assert promote(NAME, 1)["decision"] == "first champion"
    assert promote(NAME, 1)["decision"] == "unchanged"
