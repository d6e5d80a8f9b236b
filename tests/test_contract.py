"""The contract every app and task keeps: one smoke run through `dlsuite train`, checked the same way.

Each app's own tests check what is particular to it; this checks what all share:
a FINISHED MLflow run with params, per-epoch metrics, config.yaml, learning
curves, model summary, dataset lineage and test metrics, and a SavedModel in
`<root>/<app>-<task>/<version>/` that a fresh process reloads with the same outputs.
"""

import json

import mlflow
import pytest

from pipelines import catalog

SMOKE_TASKS = [(app, task) for app in catalog.APPS for task in catalog.tasks_of(app)]


@pytest.mark.parametrize(("app", "task"), SMOKE_TASKS, ids=[f"{a}-{t}" for a, t in SMOKE_TASKS])
def test_smoke_run_keeps_the_contract(app, task, tracking_uri, tmp_path, request):
    from pipelines.train import train

    data_dir = request.getfixturevalue("fashion_mnist_dir" if app == "vision" else "data_root")
    summary = train(app, task=task, preset="smoke", data_dir=str(data_dir), tracking_uri=tracking_uri,
                    export_root=str(tmp_path / "exports"), summary_json=str(tmp_path / "summary.json"))

    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert set(summary) >= {"run_id", "metrics", "export_dir", "config"}
    client = mlflow.tracking.MlflowClient(tracking_uri)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["dlsuite.app"] == app and run.data.tags["dlsuite.task"] == task
    assert run.data.tags["git_commit"] and run.data.tags["version.tensorflow"]
    assert set(summary["config"]) <= set(run.data.params)
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "learning_curves.png", "model_summary.txt", "data_info.json"} <= artifacts
    assert summary["metrics"] and all(key in run.data.metrics for key in summary["metrics"])
    assert run.data.metrics["export_max_abs_difference"] <= 1e-5
    import tensorflow as tf

    exported = set(tf.saved_model.load(summary["export_dir"]).signatures)
    assert set(run.data.tags["dlsuite.verified_signatures"].split(",")) == exported  # every signature checked
    export_dir = tmp_path / "exports" / f"{app}-{task}" / "1"
    assert summary["export_dir"] == str(export_dir.resolve())
    assert (export_dir / "saved_model.pb").is_file()
