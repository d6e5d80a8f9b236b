"""Vision: the IDX reader (Fashion-MNIST and MNIST), the TFDS fallback, the end-to-end model, and the export."""

import dataclasses
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apps.vision.classification import data as vision_data
from apps.vision.classification import idx
from shared.errors import DataError
from tests.conftest import (REPO, free_port, new_store, post_json, run_cli, start_cli_server, stop_server,
                            wait_for_http)


def write_idx(path, array, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def make_idx_folder(folder, num_train=40, num_test=20, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    arrays = {}
    for split, count in (("train", num_train), ("test", num_test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(count,), dtype=np.uint8)
        image_stem, label_stem = idx.SPLIT_FILES[split]
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{image_stem}{suffix}", images, compress)
        write_idx(folder / f"{label_stem}{suffix}", labels, compress)
        arrays[split] = (images, labels)
    return arrays


def test_reads_the_official_fashion_mnist_files(fashion_mnist_dir):
    images, labels = idx.load_split(fashion_mnist_dir, "train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and np.bincount(labels).tolist() == [6000] * 10
    test_images, _ = idx.load_split(fashion_mnist_dir, "test")
    assert test_images.shape == (10000, 28, 28)


@pytest.mark.parametrize("compress", [False, True])
def test_same_loader_reads_mnist_layout(tmp_path, compress):
    written = make_idx_folder(tmp_path / "mnist", compress=compress)
    source = vision_data.resolve_source("mnist", str(tmp_path))
    assert source == tmp_path / "mnist"
    arrays = vision_data.load_arrays("mnist", source)
    for split in ("train", "test"):
        np.testing.assert_array_equal(arrays[split][0], written[split][0])
        np.testing.assert_array_equal(arrays[split][1], written[split][1])


def test_label_count_mismatch_is_reported(tmp_path):
    make_idx_folder(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError, match=r"The test images and labels disagree in .*Received: 20 images, 5 labels\. "
                                        r"Expected one label per image\. Fix: "):
        vision_data.check_source(tmp_path / "mnist")


def test_environment_data_dir_is_used(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "mnist")
    monkeypatch.setenv("DLSUITE_DATA_DIR", str(tmp_path))
    assert vision_data.resolve_source("mnist") == tmp_path / "mnist"


def test_tfds_fallback_with_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.delenv("DLSUITE_DATA_DIR", raising=False)
    monkeypatch.setitem(vision_data.SYSTEM_DIRS, "mnist", "/nonexistent")
    source = vision_data.resolve_source("mnist")
    assert source == vision_data.TFDS
    with tfds.testing.mock_data(num_examples=12):
        arrays = vision_data.load_arrays("mnist", source)
    assert arrays["train"][0].shape == (12, 28, 28) and arrays["train"][0].dtype == np.uint8
    assert arrays["test"][1].shape == (12,)


def test_model_takes_raw_uint8_images_and_averages_the_mirror_only_at_inference(fashion_mnist_dir, tmp_path):
    import keras

    from apps.vision.classification.config import smoke
    from apps.vision.classification.tasks.classification import ClassificationTask

    model = ClassificationTask().network(smoke(), num_classes=10, steps_per_epoch=16)
    assert model.input.dtype == "uint8" and tuple(model.input.shape) == (None, 28, 28)
    images = idx.load_split(fashion_mnist_dir, "test")[0][:16]
    served = keras.ops.convert_to_numpy(model(images, training=False))
    mirrored = keras.ops.convert_to_numpy(model(images[:, :, ::-1], training=False))
    np.testing.assert_allclose(served, mirrored, atol=1e-6)  # the mean over both views, whichever comes first
    np.testing.assert_allclose(served.sum(axis=-1), 1.0, atol=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(images, training=False)), served, atol=1e-6)
    trained_on = keras.ops.convert_to_numpy(model(images, training=True))  # one view, random flips, dropout
    assert not np.allclose(trained_on, served, atol=1e-3)


def test_batch_norm_momentum_is_chosen_for_the_steps_of_an_epoch():
    import keras

    from apps.vision.classification.config import batch_norm_momentum_for, smoke
    from apps.vision.classification.tasks.classification import ClassificationTask

    assert batch_norm_momentum_for(60) == pytest.approx(0.937, abs=1e-3)  # MNIST's slice: 60 steps an epoch
    assert batch_norm_momentum_for(446) == 0.99  # all of Fashion-MNIST: Keras's default, the measured runs
    assert 0.02 ** (1 / 16) == pytest.approx(batch_norm_momentum_for(16))  # 2% of the start left after an epoch
    for momentum, expected in ((None, batch_norm_momentum_for(16)), (0.5, 0.5)):
        config = dataclasses.replace(smoke(), batch_norm_momentum=momentum)
        model = ClassificationTask().network(config, num_classes=10, steps_per_epoch=16)
        wrapper = model.get_layer("mirror_average")  # the backbone CNN inside the test-time mirror average
        norms = [layer for layer in wrapper.layer.layers if isinstance(layer, keras.layers.BatchNormalization)]
        assert len(norms) == 4 and {layer.momentum for layer in norms} == {expected}


def test_validation_follows_training_from_the_first_epoch_on_a_small_dataset(fashion_mnist_dir):
    """3,840 Fashion-MNIST images, 30 steps an epoch: with Keras's fixed momentum 0.99 the moving statistics keep
    74% of their start (mean 0, variance 1) after epoch 1 and validation lags far behind training (0.38 against
    0.67: the MNIST report, chance for 4 epochs); chosen for the steps of an epoch, validation follows."""
    import keras

    from apps.vision.classification.config import smoke
    from apps.vision.classification.tasks.classification import ClassificationTask

    task = ClassificationTask()
    history = {}
    for momentum in (None, 0.99):
        keras.utils.set_random_seed(0)
        config = dataclasses.replace(smoke(), epochs=2, max_train_examples=3840, max_test_examples=64,
                                     batch_norm_momentum=momentum)
        data = task.build_data(config, task.check_inputs(config, str(fashion_mnist_dir)))
        model = task.build_model(config, data)
        history[momentum] = model.fit(data.train, validation_data=data.validation, epochs=2, verbose=0).history
    following = history[None]
    for epoch in range(2):
        assert following["val_accuracy"][epoch] > 0.6  # chance is 0.1
        assert abs(following["val_accuracy"][epoch] - following["accuracy"][epoch]) < 0.12
    assert history[0.99]["val_accuracy"][0] < following["val_accuracy"][0] - 0.2  # the cause, reproduced


def test_default_recipe_keeps_the_last_epoch():
    """Cosine decay to ~0 makes the last epoch the one to keep: no early stopping restores a noisy "best"."""
    import keras

    from apps.vision.classification.config import default
    from apps.vision.classification.tasks.classification import ClassificationTask

    config = default()
    assert config.learning_rate_schedule == "cosine" and config.early_stopping_patience == 0
    assert not any(isinstance(callback, keras.callbacks.EarlyStopping)
                   for callback in ClassificationTask().callbacks(config))


RELOAD = """
import json, sys
import numpy as np, tensorflow as tf
cases = np.load(sys.argv[2])
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outputs = serve(images=tf.constant(cases["images"]))
print(json.dumps({
    "max_difference": float(np.abs(outputs["probabilities"].numpy() - cases["probabilities"]).max()),
    "class_names": [name.decode() for name in outputs["class_names"].numpy()],
    "input_dtype": serve.structured_input_signature[1]["images"].dtype.name,
}))
"""


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, fashion_mnist_dir, empty_store):
    """One smoke training run shared by this module's tests: (summary, tracking_uri, tmp folder)."""
    import mlflow

    from pipelines.train import train

    folder = tmp_path_factory.mktemp("vision_run")
    uri = new_store(empty_store, folder)
    summary = train("vision", preset="smoke", data_dir=str(fashion_mnist_dir), tracking_uri=uri,
                    export_root=str(folder / "exports"))
    mlflow.set_tracking_uri(uri)
    return summary, uri, folder


def test_logged_keras_model_and_saved_model_answer_the_same_on_raw_images(smoke_run, fashion_mnist_dir, tmp_path):
    """The Keras model logged to MLflow is the served model: raw uint8 images in, the same probabilities
    as the SavedModel reloaded in a fresh process (mirror averaging included, in both)."""
    import mlflow

    from apps.vision.generative import quality
    from shared import mlflow_model

    summary, _uri, _folder = smoke_run
    run = mlflow.tracking.MlflowClient().get_run(summary["run_id"])
    keras_model = mlflow_model.load_logged_keras_model(run.data.tags["dlsuite.keras_model_uri"])
    images = idx.load_split(fashion_mnist_dir, "test")[0][:100]
    probabilities = keras_model.predict(images, verbose=0)
    np.savez(tmp_path / "cases.npz", images=images, probabilities=probabilities)
    # The generative tasks' quality classifier is this Keras model (`quality_classifier_run`).
    np.testing.assert_allclose(quality.load_classifier(summary["run_id"]).probabilities(images), probabilities,
                               atol=1e-5)

    result = subprocess.run([sys.executable, "-c", RELOAD, summary["export_dir"], str(tmp_path / "cases.npz")],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert reloaded["max_difference"] <= 1e-5
    assert reloaded["input_dtype"] == "uint8"
    expected_names = [vision_data.CLASS_NAMES["fashion_mnist"][i] for i in probabilities.argmax(-1)]
    assert reloaded["class_names"] == expected_names


def test_run_logs_the_classifier_report_and_lineage(smoke_run):
    import mlflow

    summary, _uri, _folder = smoke_run
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(summary["run_id"])
    artifacts = {artifact.path for artifact in client.list_artifacts(summary["run_id"])}
    assert {"confusion_matrix.png", "per_class_metrics.json", "test_samples.png", "learning_curves.png"} <= artifacts
    table = mlflow.artifacts.load_dict(f"runs:/{summary['run_id']}/per_class_metrics.json")
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert [row["class"] for row in rows] == vision_data.CLASS_NAMES["fashion_mnist"]
    assert sum(row["support"] for row in rows) == 512
    assert all(0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 for row in rows)
    inputs = {dataset_input.dataset.name: dataset_input for dataset_input in run.inputs.dataset_inputs}
    assert set(inputs) == {"fashion_mnist-train", "fashion_mnist-validation", "fashion_mnist-test"}
    tags = {tag.key: tag.value for tag in inputs["fashion_mnist-train"].tags}
    assert tags["records"] == "2048" and len(tags["fingerprint"]) == 64
    history = client.get_metric_history(summary["run_id"], "val_accuracy")
    assert [metric.step for metric in history] == [0]


def test_evaluate_verb_measures_the_export_like_training_did(smoke_run):
    summary, uri, _folder = smoke_run
    result = run_cli("evaluate", "--run-id", summary["run_id"], "--tracking-uri", uri)
    assert result.returncode == 0, result.stderr
    accuracy = summary["metrics"]["test_accuracy"]
    assert f"test_accuracy={accuracy:.4f}" in result.stdout


def test_export_verb_writes_the_next_version(smoke_run, fashion_mnist_dir):
    summary, uri, folder = smoke_run
    result = run_cli("export", "--run-id", summary["run_id"], "--out", folder / "exports", "--tracking-uri", uri)
    assert result.returncode == 0, result.stderr
    second = folder / "exports" / "vision-classification" / "2"
    assert f"export dir: {second}" in result.stdout
    from shared.export import compare, load_serving

    images = idx.load_split(fashion_mnist_dir, "test")[0][:32]
    compare(load_serving(summary["export_dir"])(images=images), load_serving(second)(images=images), atol=1e-6)


def test_serve_answers_tf_serving_rest_requests(smoke_run, fashion_mnist_dir):
    from shared.export import load_serving

    summary, _uri, _folder = smoke_run
    model_dir = Path(summary["export_dir"]).parent
    port = free_port()
    server = start_cli_server("serve", "--model-dir", model_dir, "--port", port)
    base = f"http://127.0.0.1:{port}/v1/models/vision-classification"
    try:
        wait_for_http(base, server)
        images = idx.load_split(fashion_mnist_dir, "test")[0][:8]
        expected = load_serving(summary["export_dir"])(images=images)

        status, rows = post_json(f"{base}:predict", {"instances": images.tolist()})
        assert status == 200
        np.testing.assert_allclose([row["probabilities"] for row in rows["predictions"]], expected["probabilities"],
                                   atol=1e-6)
        assert [row["class_names"] for row in rows["predictions"]] == [n.decode() for n in expected["class_names"]]

        status, columns = post_json(f"{base}/versions/1:predict", {"inputs": {"images": images.tolist()}})
        assert status == 200 and columns["outputs"]["class_ids"] == expected["class_ids"].tolist()

        status, error = post_json(f"{base}:predict", {"rows": []})
        assert status == 400 and '"instances"' in error["error"]
        status, error = post_json(f"{base}/versions/9:predict", {"instances": images.tolist()})
        assert status == 404 and "version 9" in error["error"]
    finally:
        stop_server(server)
