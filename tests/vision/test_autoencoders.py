"""The autoencoder / VAE pieces the harness does not single out, and what every generative task shares
(`apps/vision/generative/`): pixels, unlabeled and labeled data, the ELBO terms, the sample-grid callback
logging to MLflow, and the VAE's `generate` reproducing a seed's images in a fresh process."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from apps.vision.classification import config as classification_config
from apps.vision.classification.tasks import classification
from apps.vision.generative import config as vision_config
from apps.vision.generative import data as generative_data
from apps.vision.generative import plots, sampling
from apps.vision.generative.autoencoders import elbo_terms
from apps.vision.generative.pixels import to_float, to_uint8
from apps.vision.generative.tasks.vae import VAETask
from shared import export
from shared.app import DataSource
from tests.tiny_data import make_idx_folder

REPO = Path(__file__).resolve().parents[2]


def test_pixels_round_trip_in_both_value_ranges():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    for value_range in ((0.0, 1.0), (-1.0, 1.0)):
        pixels = to_float(images, value_range)
        assert pixels.shape == (1, 16, 16, 1) and float(np.min(pixels)) == value_range[0]
        assert float(np.max(pixels)) == value_range[1]
        np.testing.assert_array_equal(to_uint8(pixels, value_range), images)
    out_of_range = to_uint8(np.array([[[-0.5, 0.6 / 255, 1.7]]], np.float32))
    np.testing.assert_array_equal(out_of_range, [[[0, 1, 255]]])  # clipped, rounded to the nearest level


def test_generative_data_are_the_classifiers_splits_without_or_with_labels(tmp_path):
    folder = make_idx_folder(tmp_path / "data")
    source = DataSource.files(folder)
    config = dataclasses.replace(vision_config.vae_smoke(), batch_size=8)
    unlabeled = generative_data.build_data(config, source)
    labeled = generative_data.build_data(config, source, labels=True)
    classified = classification.ClassificationTask().build_data(
        dataclasses.replace(classification_config.smoke(), max_train_examples=4096, max_test_examples=512), source)
    assert unlabeled.records == classified.records  # same splits, counts and fingerprints
    batch = next(iter(unlabeled.train))
    assert batch.dtype == tf.uint8 and batch.shape == (8, 28, 28)
    images, class_ids = next(iter(labeled.train))
    assert images.shape == (8, 28, 28) and class_ids.dtype == tf.int32
    for image, class_id in zip(images.numpy(), class_ids.numpy()):  # tiny_data: class k is a band at rows 2k+4..
        assert image[2 * class_id + 4:2 * class_id + 8].min() == 255
    np.testing.assert_array_equal(unlabeled.test[0], classified.test[0])


def test_elbo_terms_match_their_closed_forms():
    pixels = np.full((2, 28, 28, 1), 0.25, np.float32)
    logits = np.zeros((2, 28, 28, 1), np.float32)  # p = 0.5 everywhere: cross-entropy log 2 per pixel
    mean = np.array([[0.0, 0.0], [1.0, -2.0]], np.float32)
    log_variance = np.array([[0.0, 0.0], [np.log(4.0), 0.0]], np.float32)
    reconstruction, kl = elbo_terms(lambda latents, training=False: logits, pixels, mean, log_variance,
                                    np.zeros_like(mean))
    np.testing.assert_allclose(reconstruction, [784 * np.log(2.0)] * 2, rtol=1e-5)
    # KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1 - log s^2) / 2 per dimension
    np.testing.assert_allclose(kl, [0.0, (4 + 1 - 1 - np.log(4.0)) / 2 + (1 + 4 - 1 - 0) / 2], rtol=1e-5)


def test_sample_grids_are_logged_to_the_active_run_every_n_epochs_and_at_the_end(tracking_uri):
    calls = []

    def samples(model):
        calls.append(len(calls))
        return np.full((4, 28, 28), 17 * len(calls), np.uint8)

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with mlflow.start_run() as run:
        model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=5, verbose=0,
                  callbacks=[plots.SampleGridLogger(samples, every=2, key="samples")])
    assert len(calls) == 3  # epochs 2, 4 and the final 5
    images = [path for path in _artifact_paths(run.info.run_id) if path.endswith(".png")]
    assert sorted(int(path.split("+step+")[1].split("+")[0]) for path in images) == [2, 4, 5]


def _artifact_paths(run_id, folder=None):
    client = mlflow.tracking.MlflowClient()
    paths = []
    for item in client.list_artifacts(run_id, folder):
        paths.extend(_artifact_paths(run_id, item.path) if item.is_dir else [item.path])
    return paths


def test_sample_grid_is_drawn_without_a_run_and_montage_tiles_the_images():
    picture = plots.montage(np.full((5, 28, 28), 7, np.uint8), columns=3, pad=2)
    assert picture.shape == (2 * 30 + 2, 3 * 30 + 2) and picture[2, 2] == 7 and picture[0, 0] == 255
    logger = plots.SampleGridLogger(lambda model: np.zeros((4, 28, 28), np.uint8), every=0)
    logger.on_epoch_end(0)
    logger.on_train_end()
    assert logger.logged == [0]  # every=0: only the final grid


@pytest.fixture(scope="module")
def exported_vae(tmp_path_factory):
    """A tiny untrained VAE's export: seeded sampling, not learning, is under test."""
    tmp_path = tmp_path_factory.mktemp("vae")
    task = VAETask()
    config = dataclasses.replace(vision_config.vae_smoke(), filters=(4,), latent_dim=3, batch_size=16)
    data = task.build_data(config, DataSource.files(make_idx_folder(tmp_path / "data")))
    model = task.build_model(config, data)
    endpoints = task.endpoints(model, config, data.info)
    return export.write_saved_model(model, endpoints, tmp_path / "export"), export.serve_in_memory(endpoints)


def test_generate_is_a_function_of_its_seed_also_in_a_fresh_process(exported_vae):
    path, in_memory = exported_vae
    first = in_memory["generate"](seed=np.int32(3), count=np.int32(6))["images"]
    assert first.dtype == np.uint8 and first.shape == (6, 28, 28)
    np.testing.assert_array_equal(in_memory["generate"](seed=np.int32(3), count=np.int32(6))["images"], first)
    other = in_memory["generate"](seed=np.int32(4), count=np.int32(6))["images"]
    assert not np.array_equal(other, first)
    script = (
        "import json, sys, numpy as np\n"
        "from shared import export\n"
        "serving = export.load_serving(sys.argv[1])\n"
        "print(json.dumps({seed: serving['generate'](seed=np.int32(seed), count=np.int32(6))['images'].tolist()"
        " for seed in (3, 4)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=REPO,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    fresh = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.array(fresh["3"], np.uint8), first)
    np.testing.assert_array_equal(np.array(fresh["4"], np.uint8), other)


def test_generate_refuses_a_count_out_of_range(exported_vae):
    _path, in_memory = exported_vae
    for count in (0, sampling.MAX_COUNT + 1):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"Invalid count\. Expected 1 to 1024 images"):
            in_memory["generate"](seed=np.int32(0), count=np.int32(count))
