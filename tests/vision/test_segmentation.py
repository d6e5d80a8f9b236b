"""The segmentation task beyond the contract harness (tests/test_tasks.py runs its TaskCase): the export answers
images of any size in a fresh process, the metrics, and augmentation that moves the masks with the pixels."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from apps.vision.photos.config import segmentation_smoke
from tests.vision.photo_cases import tiny_photos

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_the_export_reloaded_in_a_fresh_process_answers_images_of_two_sizes(tmp_path):
    """An untrained smoke model (the graph is what matters): masks of each input's height and width, equal to
    the in-memory endpoint's answers. On EfficientNet-Lite0 (from scratch), the default presets' backbone: the
    smoke presets' ResNet-18 goes through the harness."""
    import keras

    from apps.vision.photos.tasks import segmentation
    from shared import export

    keras.utils.set_random_seed(0)
    config = dataclasses.replace(segmentation_smoke(), backbone="efficientnet_lite0")
    model = segmentation.SegmentationTask().network(config)
    endpoints = segmentation.SegmentationTask().endpoints(model, config, {"threshold": 0.5})
    rng = np.random.default_rng(0)
    images = {"tall": rng.integers(0, 256, (1, 97, 61, 3), dtype=np.uint8),
              "wide": rng.integers(0, 256, (2, 40, 130, 3), dtype=np.uint8)}
    expected = {name: {key: np.asarray(value) for key, value in endpoints["serving_default"].fn(batch).items()}
                for name, batch in images.items()}
    version_dir, _ = export.export_version(model, endpoints, tmp_path / "exports", "vision-segmentation")
    np.savez(tmp_path / "inputs.npz", **images)
    script = (
        "import sys\nimport numpy as np\n"
        "from shared.export import load_serving\n"
        "serving = load_serving(sys.argv[1])\n"
        "inputs = np.load(sys.argv[2])\n"
        "outputs = {name: serving(images=inputs[name]) for name in inputs.files}\n"
        "np.savez(sys.argv[3], **{f'{name}/{key}': value\n"
        "                         for name, out in outputs.items() for key, value in out.items()})\n"
    )
    subprocess.run([sys.executable, "-c", script, str(version_dir), str(tmp_path / "inputs.npz"),
                    str(tmp_path / "outputs.npz")], check=True, cwd=REPO)
    answered = np.load(tmp_path / "outputs.npz")
    for name, batch in images.items():
        masks, probabilities = answered[f"{name}/masks"], answered[f"{name}/probabilities"]
        assert masks.shape == batch.shape[:3] and masks.dtype == np.uint8, (name, masks.shape)
        assert set(np.unique(masks)) <= {0, 1}
        np.testing.assert_allclose(probabilities, expected[name]["probabilities"], atol=1e-5)
        np.testing.assert_array_equal(masks, (probabilities >= 0.5).astype(np.uint8))


def test_serving_averages_the_image_and_its_mirror_image_when_test_time_flip_is_on():
    """With `test_time_flip` the served probabilities are the mean of the model's on the image and, mirrored back,
    on its mirror image; without it, the model's alone. An asymmetric input, so the two differ."""
    import keras

    from apps.vision.photos.tasks import segmentation

    keras.utils.set_random_seed(0)
    config = dataclasses.replace(segmentation_smoke(), test_time_sizes=())
    model = segmentation.SegmentationTask().network(config)
    image = np.random.default_rng(1).integers(0, 256, (1, 50, 70, 3), dtype=np.uint8)
    image[:, :, :20] = 255  # a bright left edge: the mirror image is another input
    plain = 1 / (1 + np.exp(-np.asarray(model(image, training=False))[..., 0]))
    mirror = 1 / (1 + np.exp(-np.asarray(model(image[:, :, ::-1].copy(), training=False))[..., 0]))[:, :, ::-1]
    assert np.abs(plain - mirror).max() > 1e-3
    task = segmentation.SegmentationTask()
    for flip, expected in ((True, (plain + mirror) / 2), (False, plain)):
        served = task.endpoints(model, dataclasses.replace(config, test_time_flip=flip), {"threshold": 0.5})
        answer = served["serving_default"].fn(image)
        np.testing.assert_allclose(np.asarray(answer["probabilities"]), expected, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(answer["masks"]), (expected >= 0.5).astype(np.uint8))
    # The mirror images share the batch with the images: each row still gets its own answer.
    served = task.endpoints(model, dataclasses.replace(config, test_time_flip=True), {"threshold": 0.5})
    other = np.random.default_rng(3).integers(0, 256, (1, 50, 70, 3), dtype=np.uint8)
    together = np.asarray(served["serving_default"].fn(np.concatenate([image, other]))["probabilities"])
    for row, alone in enumerate((image, other)):
        np.testing.assert_allclose(together[row], np.asarray(served["serving_default"].fn(alone)["probabilities"])[0],
                                   atol=1e-5)


def test_serving_averages_the_sizes_in_test_time_sizes():
    """With `test_time_sizes` the served probabilities are the mean of the model's at image_size and of the same
    weights run at each other size: a segmenter built at that image_size, given the trained weights, is the
    reference. Both heads (the encoder and decoders take any multiple of 32)."""
    import keras

    from apps.vision.photos.tasks import segmentation

    image = np.random.default_rng(2).integers(0, 256, (1, 45, 83, 3), dtype=np.uint8)
    task = segmentation.SegmentationTask()
    for head in ("unet", "deeplabv3plus"):
        keras.utils.set_random_seed(0)
        config = dataclasses.replace(segmentation_smoke(), head=head, test_time_flip=False, test_time_sizes=(96, 128))
        model = segmentation.SegmentationTask().network(config)
        answers = []
        for size in (64, 96, 128):
            at_size = task.network(dataclasses.replace(config, image_size=size))
            at_size.set_weights(model.get_weights())
            answers.append(1 / (1 + np.exp(-np.asarray(at_size(image, training=False))[..., 0])))
        assert min(np.abs(answers[0] - other).max() for other in answers[1:]) > 1e-3  # the sizes answer differently
        served = task.endpoints(model, config, {"threshold": 0.5})["serving_default"].fn(image)
        assert served["probabilities"].shape == (1, 45, 83)
        np.testing.assert_allclose(np.asarray(served["probabilities"]), np.mean(answers, axis=0), atol=1e-5)
        repeated = dataclasses.replace(config, test_time_sizes=(96, 64, 128, 96))  # each size counts once
        served = task.endpoints(model, repeated, {"threshold": 0.5})["serving_default"].fn(image)
        np.testing.assert_allclose(np.asarray(served["probabilities"]), np.mean(answers, axis=0), atol=1e-5)


def test_metrics_pool_the_pixels_of_the_split():
    from apps.vision.photos.tasks.segmentation import confusion, scores

    truth = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    predicted = np.array([[1, 0, 0, 0], [1, 1, 1, 0]])
    counts = confusion(truth, predicted)
    assert counts == (3, 1, 1, 3)
    metrics = scores(counts)
    assert metrics["iou"] == pytest.approx(3 / 5) and metrics["dice"] == pytest.approx(6 / 8)
    assert metrics["background_iou"] == pytest.approx(3 / 5) and metrics["pixel_accuracy"] == pytest.approx(6 / 8)
    assert metrics["miou"] == pytest.approx(3 / 5)
    assert scores((0, 0, 0, 16))["iou"] == 1.0  # nothing to find, nothing found
    assert scores(confusion(truth, np.zeros_like(truth)))["iou"] == 0.0


def test_training_batches_move_the_masks_with_the_pixels():
    """The tiny photos' pedestrians are bright on a dark background: after flips, zooms, shifts and colour
    jitter, the masked pixels are still the bright ones."""
    from apps.vision.photos.records import Photos
    from apps.vision.photos.tasks import segmentation

    config = dataclasses.replace(segmentation_smoke(), batch_size=12, random_zoom=0.3, random_translation=0.2)
    made = tiny_photos(12)
    part = Photos([name for name, *_ in made], [image for _, image, _, _ in made],
                         [boxes for _, _, boxes, _ in made], [np.zeros(len(boxes)) for _, _, boxes, _ in made],
                         [mask for *_, mask in made], ["pedestrian"])
    images, masks = next(iter(segmentation.photo_dataset(part, config, training=True)))
    images, masks = images.numpy(), masks.numpy()[..., 0]
    assert images.shape == (12, 64, 64, 3) and set(np.unique(masks)) <= {0.0, 1.0}
    brightness = images.mean(axis=-1)
    for image, mask in zip(brightness, masks):
        if mask.sum() > 20:
            assert image[mask == 1].mean() > image[mask == 0].mean() + 60
    assert 0.02 < masks.mean() < 0.5  # foreground survived the augmentation, and it is not everywhere


def test_export_set_changes_only_the_serving_passes(tmp_path, tracking_uri):
    """`dlsuite export --set` rebuilds a trained run's serving graph with other test-time passes (one pass here
    instead of two sizes, each with its mirror image: a quarter of the work per request), and refuses a key that
    shapes the weights, with the keys it takes, before writing anything. (In-process: the CLI's exit code 2 for a
    UsageError is tested once for every verb in tests/test_cli.py.)"""
    import json

    import mlflow

    from apps.vision.photos.tasks.segmentation import SegmentationTask
    from pipelines import catalog
    from pipelines.export import export as export_run
    from pipelines.train import resolve_config, train
    from shared import export, mlflow_model
    from shared.errors import UsageError
    from tests.vision.photo_cases import write_penn_fudan

    exports = tmp_path / "exports"
    summary = train("vision", task="segmentation", preset="smoke", data_dir=str(write_penn_fudan(tmp_path / "data",
                                                                                                 count=10)),
                    tracking_uri=tracking_uri, export_root=exports)
    run_id = summary["run_id"]

    with pytest.raises(UsageError) as refused:
        export_run(run_id, exports, tracking_uri, overrides=["learning_rate=0.1"])
    message = str(refused.value)
    assert ("--set learning_rate cannot change at export" in message and "Received: --set learning_rate=0.1"
            in message and "(test_time_flip, test_time_sizes)" in message), message
    assert sorted(path.name for path in (exports / "vision-segmentation").iterdir()) == ["1"]

    second = export_run(run_id, exports, tracking_uri, overrides=["test_time_sizes=()", "test_time_flip=false"])
    assert second == (exports / "vision-segmentation" / "2").resolve()
    config = json.loads((second / export.METADATA).read_text())["config"]
    assert config["test_time_sizes"] == [] and config["test_time_flip"] is False
    # Version 2 answers what the trained network gives in one pass; version 1 averaged four passes.
    model = mlflow_model.load_logged_keras_model(
        mlflow.tracking.MlflowClient().get_run(run_id).data.tags["dlsuite.keras_model_uri"])
    one_pass = resolve_config(catalog.task_spec("vision", "segmentation")[1], "smoke",
                              overrides=["test_time_sizes=()", "test_time_flip=false"])
    expected = export.serve_in_memory(SegmentationTask().endpoints(model, one_pass, {"threshold": 0.5}))
    images = np.random.default_rng(0).integers(0, 256, (2, 70, 90, 3), np.uint8)
    got = export.load_serving(second)(images=images)
    np.testing.assert_allclose(got["probabilities"], expected(images=images)["probabilities"], atol=1e-5)
    first = export.load_serving(exports / "vision-segmentation" / "1")(images=images)
    assert np.abs(first["probabilities"] - got["probabilities"]).max() > 1e-3
