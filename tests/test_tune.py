"""`dlsuite tune`: a parent MLflow run over nested trial runs, the best config, resuming a study, bad input.

One real search (vision smoke slice, two trials, then one more in the same study) runs through the CLI;
diverging trials are real tiny vision trials in-process; the objective and pruning are checked with a
stand-in for `pipelines.train.train`.
"""

import json
import subprocess
import sys
import types

import mlflow
import pytest
import yaml

from pipelines import catalog, cli
from pipelines import train as train_lib
from pipelines import search_space
from pipelines import tune as tune_lib
from shared import config as config_lib
from shared import tracking
from shared.app import Task
from tests.conftest import REPO, new_store, run_cli, runs_in
from tests.tiny_data import make_idx_folder

SLICE = ["--preset", "smoke", "--set", "max_train_examples=256", "--set", "max_test_examples=128"]
SEARCH = ["--search", "learning_rate=1e-4..1e-2:log", "--search", "dropout_rate=0.1|0.4"]


def _client(uri):
    return mlflow.tracking.MlflowClient(uri)


def _children(uri, parent_id):
    client = _client(uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return client.search_runs(experiments, filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


def _line(stdout, prefix):
    return next(line for line in stdout.splitlines() if line.startswith(prefix))[len(prefix):].strip()


def _artifact_text(uri, run_id, name):
    mlflow.set_tracking_uri(uri)
    return tracking.load_artifact_text(run_id, name)


def _table(uri, run_id, name="trials.json"):
    table = json.loads(_artifact_text(uri, run_id, name))
    return [dict(zip(table["columns"], row)) for row in table["data"]]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, fashion_mnist_dir, empty_store):
    """`dlsuite tune vision` with two trials in study `smoke-study`, in a fresh store."""
    root = tmp_path_factory.mktemp("tune")
    uri = new_store(empty_store, root / "mlruns")
    best = root / "best.yaml"
    arguments = ["tune", "vision", *SLICE, *SEARCH, "--data-dir", fashion_mnist_dir, "--tracking-uri", uri,
                 "--study-name", "smoke-study"]
    result = run_cli(*arguments, "--trials", 2, "--best-config", best)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return types.SimpleNamespace(result=result, uri=uri, best=best, arguments=arguments, root=root,
                                 parent_id=_line(result.stdout, "tune run id:").split()[0])


def test_parent_run_holds_nested_trials_and_the_best_validation_value(searched):
    client = _client(searched.uri)
    parent = client.get_run(searched.parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "tune-vision-classification"
    assert parent.data.tags["dlsuite.tune"] == "true"
    assert parent.data.params["search.learning_rate"] == "1e-4..1e-2:log"
    assert parent.data.params["sampler_seed"] == "42"

    children = _children(searched.uri, searched.parent_id)
    assert len(children) == 2
    best_by_child = {}
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["dlsuite.app"] == "vision" and "dlsuite.export_dir" not in child.data.tags
        assert float(child.data.params["max_train_examples"]) == 256  # the ordinary pipeline's params
        history = [metric.value for metric in client.get_metric_history(child.info.run_id, "val_accuracy")]
        best_by_child[child.info.run_id] = max(history)

    best_run_id = parent.data.tags["dlsuite.tune.best_run_id"]
    assert parent.data.metrics["best_val_accuracy"] == best_by_child[best_run_id] == max(best_by_child.values())
    assert not any(key.startswith("test_") for key in parent.data.metrics)  # test data never chooses
    steps = [metric.step for metric in client.get_metric_history(searched.parent_id, "trial_val_accuracy")]
    assert sorted(steps) == [0, 1]

    artifacts = {artifact.path for artifact in client.list_artifacts(searched.parent_id)}
    assert {"best_config.yaml", "trials.json", "optimization_history.png", "search_space.json"} <= artifacts
    rows = _table(searched.uri, searched.parent_id)
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE"]
    assert {row["run_id"] for row in rows} == set(best_by_child)
    assert {row["value"] for row in rows} == set(best_by_child.values())

    stdout = searched.result.stdout
    assert "trial 1/2 (#0)" in stdout and "trial 2/2 (#1)" in stdout
    assert f"best val_accuracy: {parent.data.metrics['best_val_accuracy']:.4f}" in stdout
    assert _line(stdout, "train the winner:").startswith(
        f"dlsuite train vision --task classification --preset smoke --config {searched.best}")


def test_best_config_is_in_the_search_space_and_train_accepts_it(searched):
    saved = yaml.safe_load(searched.best.read_text())
    assert (saved["app"], saved["task"]) == ("vision", "classification")
    values = saved["config"]
    assert 1e-4 <= values["learning_rate"] <= 1e-2
    assert values["dropout_rate"] in (0.1, 0.4)
    assert values["max_train_examples"] == 256  # the --set values stay

    _task, spec = catalog.task_spec("vision", "classification")
    config = train_lib.resolve_config(spec, "smoke", config_file=searched.best)  # what `train --config` does
    assert config == config_lib.from_dict(spec.config_class, values)
    best_run = _client(searched.uri).get_run(_client(searched.uri).get_run(searched.parent_id)
                                             .data.tags["dlsuite.tune.best_run_id"])
    assert float(best_run.data.params["learning_rate"]) == config.learning_rate
    assert float(best_run.data.params["dropout_rate"]) == config.dropout_rate
    assert _artifact_text(searched.uri, searched.parent_id, "best_config.yaml") == searched.best.read_text()


def test_same_study_name_continues_the_study_up_to_its_total(searched):
    import optuna

    result = run_cli(*searched.arguments, "--trials", 3)  # the study's total: one more trial
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(2 earlier trial(s))" in result.stdout and "trial 3/3 (#2)" in result.stdout
    study = optuna.load_study(study_name="smoke-study", storage=f"sqlite:///{searched.root / 'mlruns' / 'optuna.db'}")
    assert [trial.number for trial in study.trials] == [0, 1, 2]

    parent_id = _line(result.stdout, "tune run id:").split()[0]
    assert parent_id != searched.parent_id
    assert len(_children(searched.uri, parent_id)) == 1
    assert _client(searched.uri).get_run(parent_id).data.params["sampler_seed"] == "44"  # not the first run's draws
    assert [row["number"] for row in _table(searched.uri, parent_id)] == [0, 1, 2]


def test_a_study_continues_only_with_the_same_search(searched):
    arguments = [*searched.arguments]
    arguments[arguments.index("dropout_rate=0.1|0.4")] = "dropout_rate=0.2|0.3"
    result = run_cli(*arguments, "--trials", 1)
    _assert_one_error_line(result.returncode, result.stderr, "Study 'smoke-study' was made for another search",
                           "different search", "new --study-name")


# === Bad input: one line, exit 2, no MLflow run ===


def _assert_one_error_line(code, stderr, *fragments):
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("dlsuite: error:")]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (["--search", "dropout=0.1|0.4"], ["Unknown config key 'dropout' (from --search)",
                                           "Did you mean 'dropout_rate'?"]),
        (["--search", "learning_rate=1e-3"], ["Invalid --search argument", "Received: --search learning_rate=1e-3",
                                              "LOW..HIGH", "Fix:"]),
        (["--search", "learning_rate"], ["Received: --search learning_rate.", "KEY=SPEC"]),
        (["--search", "learning_rate=1e-2..1e-4"], ["Received: --search learning_rate=1e-2..1e-4", "LOW < HIGH"]),
        (["--search", "learning_rate=0..1e-2:log"], ["LOW > 0 on a log scale", "Fix:"]),
        (["--search", "dropout_rate=0.1..1.5"], ["its high end dropout_rate=1.5", "Expected a number in [0, 1)",
                                                 "Fix: keep every candidate"]),
        (["--search", "optimizer=adam|adamax"], ["its choice optimizer=adamax", "Expected one of: adadelta"]),
        (["--search", "optimizer=adam..sgd"], ["range on a non-numeric field", "Fix: list the values"]),
        (["--search", "epochs=1.5..3"], ["integer bounds"]),
        (["--search", "epochs=1..3", "--set", "epochs=2"], ["both fixed and searched", "--set epochs=2"]),
        (["--search", "dropout_rate=0.1|0.4", "--trials", "0"], ["Received: --trials 0", "Expected an integer >= 1"]),
        ([], ["Nothing to search", "Expected at least one --search"]),
    ],
)
def test_bad_input_fails_before_any_run(arguments, fragments, tmp_path, capsys):
    store = tmp_path / "mlruns"  # no store yet (the tracking_uri fixture's has its tables made)
    code = cli.main(["tune", "vision", "--preset", "smoke", "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}",
                     *arguments])
    _assert_one_error_line(code, capsys.readouterr().err, *fragments)
    assert not (store / "mlflow.db").exists() and not (store / "optuna.db").exists()  # not even opened: no run


def test_search_specs_follow_the_field_types():
    _task, spec = catalog.task_spec("vision")
    space = search_space.parse_search_space(spec.preset("smoke"), [
        "epochs=1..4", "learning_rate=1e-4..1e-2:log", "max_train_examples=100..200",
        "filters=8,16|16,32", "optimizer=adam|adamw", "dropout_rate=0.1..0.5"])
    assert {key: dimension.kind for key, dimension in space.items()} == {
        "epochs": "int", "learning_rate": "float", "max_train_examples": "int",
        "filters": "categorical", "optimizer": "categorical", "dropout_rate": "float"}
    assert (space["learning_rate"].low, space["learning_rate"].high, space["learning_rate"].log) == (1e-4, 1e-2, True)
    assert space["filters"].choices == ("8,16", "16,32")


def test_help_and_list_do_not_import_optuna():
    code = ("import sys, contextlib, io\nfrom pipelines import cli\n"
            "for argv in (['--help'], ['list'], ['tune', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n            cli.main(argv)\n        except SystemExit:\n            pass\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'mlflow', 'optuna') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


# === Failing trials: real tiny vision trials whose loss diverges ===

DIVERGING = ["--preset", "smoke", "--set", "optimizer=sgd", "--set", "batch_size=16"]


@pytest.fixture
def tiny_fashion_mnist(tmp_path):
    return make_idx_folder(tmp_path / "fashion_mnist")


def test_a_diverging_trial_fails_its_run_and_the_search_goes_on(tracking_uri, tiny_fashion_mnist):
    # SGD at 1e30 overflows at the first update; the NaN guard raises TrainingDiverged in that trial only.
    summary = tune_lib.tune("vision", preset="smoke", overrides=["optimizer=sgd", "batch_size=16"],
                            searches=["learning_rate=1e-3|1e30"], trials=3, data_dir=str(tiny_fashion_mnist),
                            tracking_uri=tracking_uri)

    rows = summary["trials"]
    failed = [row for row in rows if row["state"] == "FAIL"]
    complete = [row for row in rows if row["state"] == "COMPLETE"]
    assert failed and complete, rows  # the seeded sampler draws both choices in three trials
    assert any(row["number"] > failed[0]["number"] for row in complete), rows  # the search went on
    client = _client(tracking_uri)
    for row in failed:
        assert row["params.learning_rate"] == "1e30"
        assert row["error"].startswith("TrainingDiverged: Training diverged: the loss became"), row["error"]
        run = client.get_run(row["run_id"])
        assert run.info.status == "FAILED"
        assert run.data.tags["failure_reason"].startswith("TrainingDiverged: Training diverged")
        assert run.data.tags["mlflow.parentRunId"] == summary["parent_run_id"]
    for row in complete:
        assert row["params.learning_rate"] == "1e-3" and client.get_run(row["run_id"]).info.status == "FINISHED"
    assert summary["best_params"]["learning_rate"] == 1e-3
    assert client.get_run(summary["parent_run_id"]).info.status == "FINISHED"
    assert len(_children(tracking_uri, summary["parent_run_id"])) == 3


@pytest.mark.large  # CI time budget: covered in part by faster tests; run with --run-large
def test_every_trial_diverging_fails_the_tune(tracking_uri, tiny_fashion_mnist, capsys):
    code = cli.main(["tune", "vision", *DIVERGING, "--search", "learning_rate=1e29|1e30", "--trials", "2",
                     "--data-dir", str(tiny_fashion_mnist), "--tracking-uri", tracking_uri])
    assert code == 1
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dlsuite: error:")]
    assert len(error) == 1 and "All 2 trial(s) failed" in error[0] and "TrainingDiverged" in error[0], error
    (parent,) = [run for run in runs_in(tracking_uri) if run.data.tags.get("dlsuite.tune")]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure_reason"].startswith("TuneFailed: All 2 trial(s) failed")
    children = [run for run in runs_in(tracking_uri) if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert [run.info.status for run in children] == ["FAILED", "FAILED"]


# === The objective (in-process, a stand-in trainer: no TensorFlow) ===


class _FakeTask(Task):
    monitor, monitor_mode = "val_accuracy", "max"

    def check_inputs(self, config, data_dir):
        from shared.app import DataSource

        return DataSource("memory", "fake")


def _fake_trainer():
    """Opens a child run like `train` does; call k logs val_accuracy [0.5, 0.9 - 0.1 k, 0.6]."""
    calls = []

    def fake_train(*, overrides, tracking_uri, experiment, parent_run_id, run_name, tags, export, **_rest):
        assert export is False
        calls.append(overrides)
        with tracking.tracked_run(experiment, tracking_uri, run_name=run_name,
                                  tags={**tags, "mlflow.parentRunId": parent_run_id}) as run:
            for step, value in enumerate([0.5, 0.9 - 0.1 * len(calls), 0.6]):
                mlflow.log_metric("val_accuracy", value, step=step)
        return {"run_id": run.info.run_id}

    return fake_train


def test_the_objective_is_the_best_epoch_of_a_trial(tracking_uri, monkeypatch):
    monkeypatch.setattr(catalog, "load_task", lambda spec: _FakeTask())
    monkeypatch.setattr(train_lib, "train", _fake_trainer())
    summary = tune_lib.tune("vision", preset="smoke", searches=["dropout_rate=0.1..0.4"], trials=3,
                            tracking_uri=tracking_uri)

    assert [trial["state"] for trial in summary["trials"]] == ["COMPLETE"] * 3
    assert summary["best_value"] == pytest.approx(0.8)  # the best epoch of call 1, not its last (0.6)
    assert summary["best_trial"] == 0
    assert [trial["value"] for trial in summary["trials"]] == pytest.approx([0.8, 0.7, 0.6])


def test_optimization_history_marks_the_best_so_far_and_failed_trials():
    from shared import plots

    figure = plots.optimization_history([(0, 0.3), (2, 0.5), (3, 0.4)], [1], "val_accuracy", "maximize")
    (axis,) = figure.axes
    best = axis.lines[1]  # the step line of the best so far
    assert list(best.get_ydata()) == [0.3, 0.5, 0.5]
    assert [line.get_xdata()[0] for line in axis.lines[2:]] == [1]  # one failed trial marked
    plots.plt.close(figure)


# === Pruning ===


def test_trial_pruning_reports_each_epoch_and_stops_training_when_told():
    import keras

    from shared.callbacks import TrialPruning

    class Trial:  # what TrialPruning uses of an Optuna trial; its pruner says stop at the third report
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) == 3

    trial, model = Trial(), keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    pruning = TrialPruning(trial, "val_accuracy")
    pruning.set_model(model)
    model.stop_training = False  # what model.fit sets before the first epoch
    epochs_run = []
    for epoch, value in enumerate([0.5, float("nan"), 0.6, 0.7, 0.8]):
        epochs_run.append(epoch)
        pruning.on_epoch_end(epoch, {"val_accuracy": value, "loss": 1.0})
        if model.stop_training:
            break
    assert trial.reported == [(0, 0.5), (2, 0.6), (3, 0.7)]  # a NaN epoch is not reported
    assert pruning.pruned_at == 3 and epochs_run == [0, 1, 2, 3]


def _curve_trainer(curves):
    """A stand-in `train` that runs the callbacks it is given over call k's val_accuracy curve, like model.fit."""
    calls = []

    def fake_train(*, tracking_uri, experiment, parent_run_id, run_name, tags, callbacks, **_rest):
        curve = curves[len(calls)]
        calls.append(run_name)
        model = types.SimpleNamespace(stop_training=False)
        with tracking.tracked_run(experiment, tracking_uri, run_name=run_name,
                                  tags={**tags, "mlflow.parentRunId": parent_run_id}) as run:
            for callback in callbacks:
                callback.set_model(model)
            for epoch, value in enumerate(curve):
                mlflow.log_metric("val_accuracy", value, step=epoch)
                for callback in callbacks:
                    callback.on_epoch_end(epoch, {"val_accuracy": value})
                if model.stop_training:
                    break
        return {"run_id": run.info.run_id}

    return fake_train


def test_median_pruning_stops_a_trial_worse_than_the_earlier_ones(tracking_uri, monkeypatch, capsys):
    good, bad = [0.5, 0.8, 0.85], [0.5, 0.3, 0.35]
    monkeypatch.setattr(catalog, "load_task", lambda spec: _FakeTask())
    monkeypatch.setattr(train_lib, "train", _curve_trainer([good] * 5 + [bad]))
    summary = tune_lib.tune("vision", preset="smoke", searches=["dropout_rate=0.1..0.4"], trials=6,
                            tracking_uri=tracking_uri)

    *complete, pruned = summary["trials"]
    assert [trial["state"] for trial in complete] == ["COMPLETE"] * 5 and pruned["state"] == "PRUNED"
    run = _client(tracking_uri).get_run(pruned["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["dlsuite.tune.pruned_at_epoch"] == "1"
    history = _client(tracking_uri).get_metric_history(pruned["run_id"], "val_accuracy")
    assert [metric.value for metric in history] == [0.5, 0.3]  # stopped after epoch 1, never trained epoch 2
    assert summary["best_value"] == pytest.approx(0.85)
    assert "PRUNED after epoch 1" in capsys.readouterr().out


@pytest.mark.large  # CI time budget: covered in part by faster tests; run with --run-large
def test_no_pruner_lets_every_trial_finish(tracking_uri, monkeypatch):
    monkeypatch.setattr(catalog, "load_task", lambda spec: _FakeTask())
    monkeypatch.setattr(train_lib, "train", _curve_trainer([[0.5, 0.8, 0.85]] * 5 + [[0.5, 0.3, 0.35]]))
    summary = tune_lib.tune("vision", preset="smoke", searches=["dropout_rate=0.1..0.4"], trials=6,
                            tracking_uri=tracking_uri, pruner="none")
    assert [trial["state"] for trial in summary["trials"]] == ["COMPLETE"] * 6


def test_tune_keeps_tensorflows_retracing_warning_about_new_trial_models_off_the_terminal():
    """Each trial's model makes its own train/predict functions from the same code; TensorFlow counts their
    first traces as one function retracing and warns. tune's filter drops that warning, and only that."""
    import logging

    import tensorflow as tf

    def new_function():  # as each trial's model makes its own
        @tf.function
        def step(x):
            return x * 2

        return step

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tensorflow_log = logging.getLogger("tensorflow")
    tensorflow_log.addHandler(handler)
    try:
        for index in range(8):
            new_function()(tf.constant(float(index)))
        unfiltered = [record.getMessage() for record in records]
        records.clear()
        tensorflow_log.addFilter(tune_lib._TRIALS_ARE_NOT_RETRACING)
        for index in range(8):
            new_function()(tf.constant(float(index)))
        tensorflow_log.warning("another warning")
    finally:
        tensorflow_log.removeFilter(tune_lib._TRIALS_ARE_NOT_RETRACING)
        tensorflow_log.removeHandler(handler)
    assert any("triggered tf.function retracing" in message for message in unfiltered)
    assert [record.getMessage() for record in records] == ["another warning"]
