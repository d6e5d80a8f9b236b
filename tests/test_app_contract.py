"""Contract v2 (shared/app.py, shared/export.py, pipelines/): what nlp, recommender, fraud and the
generative models need, each piece on the toy app (tests/toy_app) or on vision, in seconds.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from pipelines import catalog
from pipelines import evaluate as evaluate_lib
from pipelines import export as export_lib
from pipelines import runs
from pipelines.train import train
from shared import data as shared_data
from shared import export
from shared.app import Data, Endpoint, Task
from shared.errors import UsageError
from tests.conftest import REPO, new_store, runs_in
from tests.toy_app import app as toy

# === The toy app, registered for the in-process pipeline ===


@pytest.fixture
def toy_app(monkeypatch):
    monkeypatch.setitem(catalog.APPS, "toy", ("tests.toy_app.config", "Toy points (contract tests)."))


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory, empty_store):
    """One toy run (trained, evaluated, exported) shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("toy")
    uri = new_store(empty_store, folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(catalog.APPS, "toy", ("tests.toy_app.config", "Toy points (contract tests)."))
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        summary = train("toy", preset="default", tracking_uri=uri, export_root=str(folder / "exports"))
        yield {"uri": uri, "summary": summary, "folder": folder}


@pytest.fixture
def toy_run(toy_store, monkeypatch):
    monkeypatch.setitem(catalog.APPS, "toy", ("tests.toy_app.config", "Toy points (contract tests)."))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", toy_store["uri"])
    mlflow.set_tracking_uri(toy_store["uri"])
    return toy_store["summary"]


def _points(count=32, seed=3):
    return np.random.default_rng(seed).normal(size=(count, 2)).astype(np.float32)


# 1. Serving sees the config and what training computed after fit; export --run-id rebuilds it.


def test_after_fit_state_reaches_serving_and_export_rebuilds_the_same_export(toy_run, toy_store):
    info = runs.load_info(toy_run["run_id"])
    assert isinstance(info["score_histogram"], np.ndarray) and "threshold" in info  # arrays survive the run store
    trained = export.load_serving(toy_run["export_dir"])
    outputs = trained(points=_points())
    np.testing.assert_array_equal(outputs["flagged"], outputs["scores"] >= np.float32(info["threshold"]))
    np.testing.assert_array_equal(outputs["score_histogram"], info["score_histogram"])

    rebuilt_dir = export_lib.export(toy_run["run_id"], export_root=str(toy_store["folder"] / "rebuilt"))
    assert rebuilt_dir.name == "1"
    rebuilt = export.load_serving(rebuilt_dir)
    assert set(rebuilt) == set(trained) == {"serving_default", "generate"}
    export.compare(outputs, rebuilt(points=_points()), atol=0.0)
    export.compare(trained["generate"](seed=np.int32(5), count=np.int32(9)),
                   rebuilt["generate"](seed=np.int32(5), count=np.int32(9)), atol=0.0)


# 2. Every signature can be evaluated: training and `dlsuite evaluate` measure the same.


def test_evaluate_gets_every_signature_in_training_and_from_the_saved_model(toy_run, toy_store):
    tracking_uri = toy_store["uri"]
    assert {"test_accuracy", "generated_positive_rate"} <= set(toy_run["metrics"])
    assert toy_run["metrics"]["test_accuracy"] > 0.9  # a separable problem: the model learned it
    result = evaluate_lib.evaluate(run_id=toy_run["run_id"], tracking_uri=tracking_uri)
    for key, value in toy_run["metrics"].items():
        assert result["metrics"][key] == pytest.approx(value, abs=1e-6)


def test_each_evaluation_of_a_run_gets_its_own_step(toy_run, toy_store):
    client = mlflow.tracking.MlflowClient(toy_store["uri"])
    before = len(client.get_metric_history(toy_run["run_id"], "evaluate_test_accuracy"))
    for _ in range(2):
        evaluate_lib.evaluate(run_id=toy_run["run_id"], tracking_uri=toy_store["uri"])
    history = client.get_metric_history(toy_run["run_id"], "evaluate_test_accuracy")
    assert sorted(metric.step for metric in history) == list(range(before + 2))  # the UI charts them all


# 3. Randomness is an input: the same seed gives the same sample, also in a fresh process.


def test_generate_takes_a_seed_and_reproduces_exactly_in_a_fresh_process(toy_run, toy_store):
    tracking_uri = toy_store["uri"]
    run = mlflow.tracking.MlflowClient(tracking_uri).get_run(toy_run["run_id"])
    assert run.data.tags["dlsuite.verified_signatures"] == "generate,serving_default"
    assert run.data.tags["dlsuite.export_max_abs_difference"] == "0"  # a check, not a curve: a tag
    assert "export_max_abs_difference" not in run.data.metrics
    generate = export.load_serving(toy_run["export_dir"])["generate"]
    first, again = (generate(seed=np.int32(11), count=np.int32(4)) for _ in range(2))
    other = generate(seed=np.int32(12), count=np.int32(4))
    np.testing.assert_array_equal(first["points"], again["points"])
    assert not np.allclose(first["points"], other["points"])
    code = ("import numpy as np; from shared import export; "
            f"print(export.load_serving({toy_run['export_dir']!r})['generate'](seed=np.int32(11), "
            "count=np.int32(4))['points'].tolist())")
    fresh = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    np.testing.assert_array_equal(np.array(json.loads(fresh.stdout.strip().splitlines()[-1]), np.float32),
                                  first["points"])


# 4. Data that is not (features, labels).


@pytest.mark.parametrize("kind", ["features_only", "dict_features_only", "dict_with_labels", "weighted"])
def test_model_example_reads_features_only_and_dict_batches(kind):
    features = {"user_id": np.arange(8), "item_id": np.arange(8) * 2} if kind.startswith("dict") else _points(8)
    element = {"features_only": features, "dict_features_only": features,
               "dict_with_labels": (features, np.ones(8)), "weighted": (features, np.ones(8), np.ones(8))}[kind]
    example = Task().model_example(Data(train=tf.data.Dataset.from_tensor_slices(element).batch(8)))
    if isinstance(features, dict):
        assert set(example) == {"user_id", "item_id"} and all(len(value) == 4 for value in example.values())
    else:
        np.testing.assert_array_equal(example, features[:4])


# 5. Steps per epoch when tf.data does not know the size.


def test_steps_per_epoch_counts_a_filtered_dataset_and_the_schedule_keeps_its_learning_rate():
    from shared.optimizers import build_optimizer
    from tests.toy_app.config import default

    filtered = tf.data.Dataset.range(100).filter(lambda value: value % 2 == 0).batch(8)
    assert int(filtered.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    assert shared_data.steps_per_epoch(filtered) == 7
    assert int(shared_data.sized(filtered).cardinality()) == 7
    config = default()  # cosine over 3 epochs
    optimizer = build_optimizer(config, shared_data.steps_per_epoch(filtered))
    optimizer.iterations.assign(7)  # one epoch of 7 steps done: a third of the cosine
    assert float(optimizer.learning_rate) == pytest.approx(config.learning_rate * (1 + np.cos(np.pi / 3)) / 2, rel=1e-4)
    with pytest.raises(ValueError, match="infinite dataset"):
        shared_data.steps_per_epoch(filtered.repeat())


def test_a_filtered_training_set_trains_with_its_real_learning_rate(toy_run, toy_store):
    tracking_uri = toy_store["uri"]
    history = mlflow.tracking.MlflowClient(tracking_uri).get_metric_history(toy_run["run_id"], "learning_rate")
    rates = [metric.value for metric in sorted(history, key=lambda metric: metric.step)]
    assert len(rates) == 3 and rates[0] > 0.5 * 0.05 and rates[1] > 0.1 * 0.05  # not collapsed after one step


# 6. SavedModels whose graphs use tensorflow-text ops (keras-hub tokenizers) load everywhere.


def test_an_export_with_a_keras_hub_tokenizer_loads_in_a_fresh_process_and_here(tmp_path):
    import keras
    import keras_hub

    vocabulary = ["[PAD]", "[UNK]", "the", "qu", "##ick", "brown", "fox", "."]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, sequence_length=6)
    token_ids = keras.Input(shape=(6,), dtype="int32")
    model = keras.Model(token_ids, keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(8, 3)(token_ids)))

    def serve(text):
        ids = tokenizer(text)
        return {"token_ids": ids, "embedding": model(ids)}

    endpoints = {"serving_default": Endpoint(serve, [tf.TensorSpec([None], tf.string, name="text")])}
    inputs = {"text": np.array([b"the quick brown fox.", b"", "caf\u00e9 fox".encode()], dtype=object)}
    expected = export.serve_in_memory(endpoints)(**inputs)
    folder, differences = export.export_version(
        model, endpoints, tmp_path, "tokens", check=lambda path: export.verify_in_fresh_process(
            path, {"serving_default": (inputs, expected)}))
    assert differences["serving_default"]["embedding"] <= 1e-6
    reloaded = export.load_serving(folder)(**inputs)
    np.testing.assert_array_equal(reloaded["token_ids"][0], [2, 3, 4, 5, 6, 7])


# 7. Imbalance and time.


def test_class_weight_from_the_task_reaches_fit(toy_app, tmp_path):
    from tests.toy_app.config import default

    flagged = {}
    for weighting in (False, True):
        config = default().__class__(**{**default().__dict__, "positive_fraction": 0.1,
                                        "class_weighting": weighting, "learning_rate_schedule": "constant"})
        task = toy.PointsTask()
        data = task.build_data(config, task.check_inputs(config, None))
        model = task.build_model(config, data)
        task.fit(model, data, config, [], tmp_path / f"checkpoints-{weighting}")
        flagged[weighting] = float((model.predict(data.test[0], verbose=0)[:, 0] > 0.5).mean())
    assert flagged[True] > flagged[False] + 0.02  # weighting the rare class predicts it more often


def test_metric_callbacks_feed_early_stopping_and_the_logger(toy_app, tmp_path):
    """A validation metric Keras cannot compute per batch (the recommender's catalogue ranking) is added by
    `Task.metric_callbacks` before early stopping watches it and the pipeline's callbacks log it."""
    import keras

    from tests.toy_app.config import default

    scores = [0.5, 0.7, 0.6, 0.55, 0.9, 0.9]  # best at epoch 2; patience 2 stops after epoch 4

    class Scored(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = scores[epoch]

    class ScoredTask(toy.PointsTask):
        monitor, monitor_mode = "val_score", "max"

        def metric_callbacks(self, config, data):
            return [Scored()]

    class Logger(keras.callbacks.Callback):
        seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(logs.get("val_score"))

    config = default().__class__(**{**default().__dict__, "epochs": 6, "early_stopping_patience": 2})
    task = ScoredTask()
    data = task.build_data(config, task.check_inputs(config, None))
    task.fit(task.build_model(config, data), data, config, [Logger()], tmp_path / "checkpoints")
    assert Logger.seen == scores[:4]


class _Counted(keras.layers.Layer):
    """A frozen layer that counts the examples it computes (a stand-in for a pretrained extractor)."""

    def build(self, input_shape):
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x):
        self.seen.assign_add(tf.cast(tf.shape(x)[0], "float32"))
        return tf.concat([x, x * x], axis=-1)


def test_frozen_features_are_computed_once_and_only_the_head_trains(toy_app, tmp_path, capsys):
    """`Task.frozen_features` names where the frozen front ends: `fit` computes its output once for the training
    and validation data, trains the layers after it, and the whole model (what is exported) is the trained one."""
    from tests.toy_app.config import default

    class FrozenFrontTask(toy.PointsTask):
        def build_model(self, config, data):
            inputs = keras.Input(shape=(2,), name="points")
            front = _Counted(name="front", trainable=False)
            x = keras.layers.Identity(name="pool")(front(inputs))
            x = keras.layers.Normalization(name="standardize")(x)  # no statistics given: adapted by fit
            outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
            model = keras.Model(inputs, outputs)
            model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
            return model

        def frozen_features(self, config):
            return "pool"

    config = dataclasses.replace(default(), epochs=4, early_stopping_patience=0)
    task = FrozenFrontTask()
    data = task.build_data(config, task.check_inputs(config, None))
    model = task.build_model(config, data)
    examples = sum(int(batch[0].shape[0]) for part in (data.train, data.validation) for batch in part)
    before = model.get_layer("score").kernel.numpy().copy()
    task.fit(model, data, config, [], tmp_path / "checkpoints")
    assert float(model.get_layer("front").seen.numpy()) == examples  # once, not once per epoch
    points = np.concatenate([batch[0].numpy() for batch in data.train])
    np.testing.assert_allclose(model.get_layer("standardize").mean.numpy().ravel(),
                               np.concatenate([points, points ** 2], axis=1).mean(axis=0), rtol=1e-4)
    assert not np.allclose(model.get_layer("score").kernel.numpy(), before)  # the shared head trained
    assert int(model.optimizer.iterations.numpy()) > 0  # the whole model carries the head's optimizer state
    accuracy = float((((model.predict(data.test[0], verbose=0)[:, 0] > 0.5) == data.test[1])).mean())
    assert accuracy > 0.8, accuracy
    assert "frozen features of" in capsys.readouterr().out

    # A killed run resumes the head where its checkpoint left it (BackupAndRestore holds the head's weights).
    class Killed(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.kernel = self.model.get_layer("score").kernel.numpy().copy()
                raise RuntimeError("killed")

    class Resumed(keras.callbacks.Callback):
        epochs = []

        def on_train_begin(self, logs=None):
            self.kernel = self.model.get_layer("score").kernel.numpy().copy()

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    killed, resumed = Killed(), Resumed()
    with pytest.raises(RuntimeError, match="killed"):
        task.fit(task.build_model(config, data), data, config, [killed], tmp_path / "resumable")
    model = task.build_model(config, data)
    task.fit(model, data, config, [resumed], tmp_path / "resumable")
    np.testing.assert_allclose(resumed.kernel, killed.kernel)
    assert resumed.epochs == [2, 3]

    class TrainableFrontTask(FrozenFrontTask):
        def frozen_features(self, config):
            return "score"  # a trainable layer is before it: its output changes while training

    with pytest.raises(ValueError, match=r"Layers before 'score' train.*Received trainable weights in: score"):
        TrainableFrontTask().fit(model, data, config, [], tmp_path / "other")


def test_time_split_keeps_train_before_validation_before_test_with_a_gap():
    days = np.arange(np.datetime64("2018-07-01"), np.datetime64("2018-08-15"))
    stamps = np.random.default_rng(0).permutation(np.repeat(days, 3))
    train_index, validation_index, test_index = shared_data.time_split(
        stamps, np.datetime64("2018-07-25"), np.datetime64("2018-08-08"), gap=np.timedelta64(7, "D"))
    assert stamps[train_index].max() < np.datetime64("2018-07-18")  # the delay before validation is left out
    assert stamps[validation_index].min() == np.datetime64("2018-07-25")
    assert stamps[validation_index].max() < np.datetime64("2018-08-01")
    assert stamps[test_index].min() == np.datetime64("2018-08-08")
    assert np.all(np.diff(stamps[test_index]) >= np.timedelta64(0, "D"))  # sorted by time
    with pytest.raises(ValueError, match="leaves the test period empty"):
        shared_data.time_split(stamps, np.datetime64("2018-07-25"), np.datetime64("2019-01-01"))


# 8. A run's data source is a real place: a TFDS-sourced run resumes and evaluates.


@pytest.mark.large  # CI time budget: covered in part by faster tests; run with --run-large
def test_a_tfds_sourced_run_records_its_source_resumes_and_evaluates(tracking_uri, tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from apps.vision.classification import data as vision_data

    monkeypatch.delenv("DLSUITE_DATA_DIR", raising=False)
    monkeypatch.setitem(vision_data.SYSTEM_DIRS, "fashion_mnist", str(tmp_path / "nowhere"))
    task_class = type(catalog.load_task(catalog.task_spec("vision")[1]))
    original = task_class.evaluate
    calls = []

    def fails_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated crash after training")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(task_class, "evaluate", fails_once)
    options = dict(tracking_uri=tracking_uri, export_root=str(tmp_path / "exports"))
    with tfds.testing.mock_data(num_examples=96):
        with pytest.raises(RuntimeError, match="simulated crash"):
            train("vision", preset="smoke", overrides=["max_train_examples=64", "max_test_examples=32"], **options)
        failed = runs_in(tracking_uri)[0]
        assert failed.info.status == "FAILED"
        assert failed.data.tags["dlsuite.data_source"] == "tfds://fashion_mnist"
        assert failed.data.tags["dlsuite.data_dir"] == ""  # not the string "tfds" taken for a folder
        summary = train("vision", resume=failed.info.run_id, **options)
        assert summary["run_id"] == failed.info.run_id and summary["data_source"] == "tfds://fashion_mnist"
        result = evaluate_lib.evaluate(run_id=summary["run_id"], tracking_uri=tracking_uri)
    assert result["data"]["source"] == "tfds://fashion_mnist"
    assert result["metrics"]["test_accuracy"] == pytest.approx(summary["metrics"]["test_accuracy"], abs=1e-6)


# 9. Evaluate on other data, and say which.


def test_evaluate_on_another_copy_of_the_data_reports_which_data(toy_run, toy_store, tmp_path):
    tracking_uri = toy_store["uri"]
    points, labels = toy.make_points(200, 0.5, seed=99)
    later = toy.write_points(tmp_path / "later", points, labels)
    flipped = toy.write_points(tmp_path / "flipped", points, 1 - labels)
    good = evaluate_lib.evaluate(run_id=toy_run["run_id"], data_dir=str(later), tracking_uri=tracking_uri)
    bad = evaluate_lib.evaluate(model_dir=str(toy_store["folder"] / "exports" / "toy-points"), data_dir=str(flipped),
                                tracking_uri=tracking_uri)
    assert good["data"]["source"] == str(later.resolve()) and bad["data"]["source"] == str(flipped.resolve())
    assert {record["split"]: record["records"] for record in good["data"]["records"]}["test"] == 50
    assert good["metrics"]["test_accuracy"] > 0.9 and bad["metrics"]["test_accuracy"] < 0.1  # it read that data
    artifacts = mlflow.tracking.MlflowClient(tracking_uri).list_artifacts(toy_run["run_id"], "evaluations")
    logged = [json.loads(mlflow.artifacts.load_text(f"runs:/{toy_run['run_id']}/{item.path}")) for item in artifacts]
    assert {entry["data"]["source"] for entry in logged} >= {str(later.resolve()), str(flipped.resolve())}
    with pytest.raises(UsageError, match="No SavedModel found"):
        evaluate_lib.evaluate(model_dir=str(tmp_path / "later"), tracking_uri=tracking_uri)


# === Exports are atomic (issue: a killed export must not break serving) ===


def test_a_failed_check_leaves_no_version_and_orphans_are_cleaned(tmp_path):
    import keras

    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    endpoints = {"serving_default": Endpoint(lambda points: {"y": model(points)},
                                             [tf.TensorSpec([None, 2], tf.float32, name="points")])}
    base = tmp_path / "toy-points"
    (base / f"{export.INCOMPLETE}999999").mkdir(parents=True)  # left by a killed export (no such process)
    (base / "1" / "variables").mkdir(parents=True)  # a half-written version from an older writer

    def failing_check(folder):
        raise RuntimeError("verification failed")

    with pytest.raises(RuntimeError, match="verification failed"):
        export.export_version(model, endpoints, tmp_path, "toy-points", check=failing_check)
    assert sorted(path.name for path in base.iterdir()) == ["1"] and export.versions(base) == []
    folder, _ = export.export_version(model, endpoints, tmp_path, "toy-points", metadata={"app": "toy"})
    assert folder.name == "2" and export.versions(base) == [2]
    assert export.read_metadata(folder) == {"app": "toy"}


def test_sigkill_during_export_leaves_no_version_and_resume_finishes_it(tracking_uri, tmp_path, fashion_mnist_dir):
    exports = tmp_path / "exports"
    command = [sys.executable, "-m", "pipelines.cli", "train", "vision", "--preset", "smoke", "--set",
               "max_train_examples=256", "--data-dir", str(fashion_mnist_dir), "--tracking-uri", tracking_uri,
               "--export-dir", str(exports)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 300
    while not list(exports.glob(f"vision-classification/{export.INCOMPLETE}*")):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its export began"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    base = exports / "vision-classification"
    assert export.versions(base) == [] and not [path for path in base.iterdir() if path.name.isdigit()]
    run = runs_in(tracking_uri)[0]
    assert run.info.status == "RUNNING"  # SIGKILL gives no chance to end it; --resume does
    summary = train("vision", resume=run.info.run_id, tracking_uri=tracking_uri, export_root=str(exports))
    assert summary["export_dir"] == str((base / "1").resolve())
    assert sorted(path.name for path in base.iterdir()) == ["1"]  # the orphan is gone


def test_an_export_root_that_is_a_file_is_refused_before_the_run(toy_app, tracking_uri, tmp_path):
    (tmp_path / "exports").write_text("not a folder")
    with pytest.raises(UsageError, match="The export root is not a folder"):
        train("toy", tracking_uri=tracking_uri, export_root=str(tmp_path / "exports" / "more"))
    assert runs_in(tracking_uri) == []


def test_resume_refuses_flags_that_would_be_silently_ignored(toy_app, tracking_uri):
    with pytest.raises(UsageError, match=r"--set, --seed cannot change a resumed run.*Received: --resume abc"):
        train("toy", resume="abc", overrides=["learning_rate=1e-3"], seed=3, tracking_uri=tracking_uri)
    assert runs_in(tracking_uri) == []


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_weight_decay_reaches_every_optimizer_and_zero_means_none(name):
    from shared.optimizers import get_optimizer

    assert get_optimizer(name, 0.01, weight_decay=1e-3).weight_decay == pytest.approx(1e-3)
    assert not get_optimizer(name, 0.01, weight_decay=0.0).weight_decay


def _tiny_export(model_outputs=None):
    import keras

    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    endpoints = {"serving_default": Endpoint(lambda points: {"y": model(points)},
                                             [tf.TensorSpec([None, 2], tf.float32, name="points")])}
    points = _points(4)
    return model, endpoints, {"serving_default": ({"points": points}, model_outputs or {"y": model(points).numpy()})}


def test_a_relative_export_root_is_verified_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a user's project folder, not the repository (the default is --export-dir exports)
    model, endpoints, cases = _tiny_export()
    folder, differences = export.export_version(
        model, endpoints, "exports", "toy-points", check=lambda path: export.verify_in_fresh_process(path, cases))
    assert folder == (tmp_path / "exports" / "toy-points" / "1").resolve() and differences["serving_default"]


def test_an_export_that_answers_differently_fails_the_run_in_one_line(tmp_path):
    from shared.errors import ExportCheckFailed, RunFailed

    model, endpoints, _cases = _tiny_export()
    wrong = {"serving_default": ({"points": _points(4)}, {"y": np.full((4, 1), 123.0, np.float32)})}
    with pytest.raises(ExportCheckFailed, match="did not answer like the model in memory") as raised:
        export.export_version(model, endpoints, tmp_path, "toy-points",
                              check=lambda path: export.verify_in_fresh_process(path, wrong))
    assert isinstance(raised.value, RunFailed)  # the CLI prints it as one line and exits 1
    assert export.versions(tmp_path / "toy-points") == []
