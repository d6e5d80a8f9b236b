"""The detection task beyond the harness: the export, reloaded in a fresh process, answers images of two
different sizes (one per call and as a padded batch) in their own pixel coordinates; the letterbox both
training and serving use; the smooth-L1 box loss; the COCO metrics on known answers."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apps.vision.photos.records import Photos
from apps.vision.photos.tasks.detection import DetectionTask, coco_metrics, decode_batch, letterbox, pad_batch
from pipelines import catalog
from pipelines.train import resolve_config
from tests.vision.photo_cases import write_penn_fudan

REPO = Path(__file__).resolve().parents[2]
FRESH = """
import json, sys
import numpy as np
from shared.export import load_serving
serving = load_serving(sys.argv[1])
inputs = np.load(sys.argv[2])
answers = {"small": serving(images=inputs["small"]), "tall": serving(images=inputs["tall"]),
           "batch": serving["padded_batch"](images=inputs["images"], sizes=inputs["sizes"])}
print(json.dumps({name: {key: value.astype(str if value.dtype.kind in "SO" else float).tolist()
                         for key, value in answer.items()} for name, answer in answers.items()}))
"""


def test_export_answers_two_image_sizes_in_a_fresh_process(tmp_path):
    import keras

    from shared import export

    _, spec = catalog.task_spec("vision", "detection")
    # An untrained tiny model with no score threshold: every one of its max_detections boxes comes back.
    config = resolve_config(spec, "smoke", overrides=["score_threshold=0.0", "max_detections=5"])
    task = DetectionTask()
    source = task.check_inputs(config, str(write_penn_fudan(tmp_path / "data", count=10)))
    data = task.build_data(config, source)
    keras.utils.set_random_seed(config.seed)
    model = task.build_model(config, data)
    endpoints = task.endpoints(model, config, data.info)
    rng = np.random.default_rng(0)
    small, tall = rng.integers(0, 255, (1, 70, 90, 3), np.uint8), rng.integers(0, 255, (1, 150, 48, 3), np.uint8)
    batch = pad_batch([small[0], tall[0]])
    in_memory = export.serve_in_memory(endpoints)
    expected = {"small": in_memory(images=small), "tall": in_memory(images=tall),
                "batch": in_memory["padded_batch"](**batch)}

    version_dir, _ = export.export_version(model, endpoints, tmp_path / "exports", "vision-detection")
    np.savez(tmp_path / "inputs.npz", small=small, tall=tall, **batch)
    result = subprocess.run([sys.executable, "-c", FRESH, str(version_dir), str(tmp_path / "inputs.npz")],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])

    for name, image in (("small", small), ("tall", tall)):
        got, want = answers[name], expected[name]
        assert np.asarray(got["boxes"]).shape == (1, 5, 4) and got["num_detections"] == [5]
        np.testing.assert_allclose(got["boxes"], want["boxes"], atol=1e-3)
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
        assert set(got["class_names"][0]) == {"pedestrian"} and got["class_ids"] == [[0] * 5]
        boxes = np.asarray(got["boxes"][0])  # in the input image's pixels: inside it, not in the 64 x 64 letterbox
        height, width = image.shape[1:3]
        assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= width).all() and (boxes[:, [1, 3]] <= height).all()
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()  # clipped: may be empty
    # The padded batch of both answers what each answers alone.
    for key in ("boxes", "scores"):
        np.testing.assert_allclose(answers["batch"][key], [answers["small"][key][0], answers["tall"][key][0]],
                                   atol=1e-3)
    assert max(np.asarray(answers["tall"]["boxes"])[0, :, 3]) > 64  # boxes reach below the letterbox's 64 rows


@pytest.mark.parametrize(("sizes", "received"), [
    ([[70, 90], [0, 48]], "sizes row 1 = [0 48] for images padded to height and width [150 90]"),
    ([[-5, 90], [150, 48]], "sizes row 0 = [-5 90]"),
    ([[70, 90], [2 ** 31 - 1, 48]], "sizes row 1 = [2147483647 48]"),
    ([[70, 90], [150, 91]], "sizes row 1 = [150 91]"),
    ([[70, 90]], "not one row per image. Received: 1 rows of sizes for 2 images"),
])
def test_padded_batch_refuses_sizes_outside_the_images(detector, sizes, received):
    """Sizes outside 1..the padded side gave 200 and meaningless boxes (or, for 0, TensorFlow's graph stack)."""
    import tensorflow as tf

    from pipelines.rest import model_refusal

    batch = pad_batch([np.zeros((70, 90, 3), np.uint8), np.zeros((150, 48, 3), np.uint8)])
    assert detector["padded_batch"](**batch)["boxes"].shape[0] == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="Invalid sizes for padded_batch") as refused:
        detector["padded_batch"](images=batch["images"], sizes=np.asarray(sizes, np.int32))
    message = str(model_refusal(refused.value.message))  # what `dlsuite serve` answers, with status 400
    assert received in message and "Expected" in message and "Graph" not in message, message


@pytest.fixture(scope="module")
def smoke_detector(tmp_path_factory):
    """An untrained smoke detector, its config and its data."""
    import keras

    _, spec = catalog.task_spec("vision", "detection")
    config = resolve_config(spec, "smoke")
    task = DetectionTask()
    data = task.build_data(config, task.check_inputs(config, str(write_penn_fudan(tmp_path_factory.mktemp("data"),
                                                                                    count=10))))
    keras.utils.set_random_seed(config.seed)
    return task.build_model(config, data), config, data


@pytest.fixture(scope="module")
def detector(smoke_detector):
    """The in-memory serving endpoints of an untrained smoke detector."""
    from shared import export

    model, config, data = smoke_detector
    return export.serve_in_memory(DetectionTask().endpoints(model, config, data.info))


def test_batched_decoding_finds_what_keras_hubs_decoder_finds_image_by_image(smoke_detector):
    """The serving graph decodes and suppresses a whole batch at once (keras-hub's NonMaxSuppression needs a
    static batch size); on random network outputs it keeps the same boxes, scores and labels, in the same order,
    as `decode_predictions` on each image alone."""
    import tensorflow as tf

    model, config, _ = smoke_detector
    pixels = tf.zeros([3, config.image_size, config.image_size, 3])
    shapes = {name: value.shape[1:] for name, value in model(pixels[:1], training=False).items()}
    rng = np.random.default_rng(0)
    predictions = {"bbox_regression": tf.constant(rng.normal(0, 0.5, (3, *shapes["bbox_regression"])), tf.float32),
                   "cls_logits": tf.constant(rng.normal(-3, 2, (3, *shapes["cls_logits"])), tf.float32)}
    decoder = model.prediction_decoder
    batched = tf.function(lambda predictions, pixels: decode_batch(
        model, predictions, pixels, iou_threshold=decoder.iou_threshold, score_threshold=decoder.confidence_threshold,
        max_detections=decoder.max_detections))(predictions, pixels)
    for image in range(3):
        alone = model.decode_predictions({name: value[image:image + 1] for name, value in predictions.items()},
                                         pixels[image:image + 1])
        count = int(alone["num_detections"][0])
        assert count == int(batched["num_detections"][image]) and count > 5
        np.testing.assert_allclose(batched["boxes"][image, :count], alone["boxes"][0, :count], atol=1e-4)
        np.testing.assert_allclose(batched["confidence"][image, :count], alone["confidence"][0, :count], atol=1e-6)
        np.testing.assert_array_equal(batched["labels"][image, :count], alone["labels"][0, :count])


def test_letterbox_resizes_the_longer_side_and_pads_bottom_right():
    image = np.full((50, 100, 3), 200, np.uint8)
    padded, scale = letterbox(image, (50, 100), 64)
    padded = np.asarray(padded)
    assert padded.shape == (64, 64, 3) and padded.dtype == np.uint8
    np.testing.assert_allclose(np.asarray(scale), [0.64, 0.64])
    assert (padded[:32] == 200).all() and (padded[32:] == 0).all()


@pytest.mark.parametrize("beta", [0.11, 1.0])
def test_the_box_loss_is_smooth_l1_per_positive_anchor(tmp_path, beta):
    """Box deltas off by 0.2 on every coordinate cost 0.2 - beta / 2 per positive anchor (smooth L1: gradient 1), not
    keras-hub's Huber(1.0) 0.02 (gradient 0.2): the term the box head learns from."""
    import keras

    _, spec = catalog.task_spec("vision", "detection")
    config = resolve_config(spec, "smoke", overrides=[f"box_loss_beta={beta}"])
    task = DetectionTask()
    data = task.build_data(config, task.check_inputs(config, str(write_penn_fudan(tmp_path / "data", count=10))))
    images, targets = next(iter(data.validation))
    keras.utils.set_random_seed(config.seed)
    model = task.build_model(config, data)  # compiled with the config's box loss
    deltas, labels = model.label_encoder(images=images, gt_boxes=targets["boxes"], gt_classes=targets["labels"])
    assert float(np.sum(np.asarray(labels) >= 0)) > 0  # some anchors are matched to pedestrians
    logits = model(images)["cls_logits"]

    def loss(offset):
        return float(model.compute_loss(images, targets, {"bbox_regression": deltas + offset, "cls_logits": logits},
                                        None))

    assert loss(0.2) - loss(0.0) == pytest.approx(0.2 - beta / 2 if beta < 0.2 else 0.5 * 0.2 ** 2, rel=1e-3)


def test_coco_metrics_on_known_answers():
    truth = Photos(
        names=["a", "b"], images=[np.zeros((100, 100, 3), np.uint8)] * 2, masks=[None, None], class_names=["p"],
        boxes=[np.array([[10, 10, 30, 60]], np.float32), np.array([[50, 20, 80, 90], [5, 5, 20, 40]], np.float32)],
        labels=[np.zeros(1, np.int32), np.zeros(2, np.int32)])

    def predicted(boxes, scores):
        return {"boxes": np.asarray(boxes, np.float32), "scores": np.asarray(scores, np.float32),
                "class_ids": np.zeros(len(scores), np.int32)}

    perfect = [predicted(truth.boxes[0], [0.9]), predicted(truth.boxes[1], [0.8, 0.7])]
    scores = coco_metrics(truth, perfect, 1)
    assert scores["map"] == pytest.approx(1.0) and scores["ap50"] == pytest.approx(1.0)
    assert scores["ar100"] == pytest.approx(1.0)
    # Shifted by 6 and 12 px: IoU 0.54 and 0.71, so found at IoU 0.5 but not at 0.75; one object missed entirely.
    shifted = [predicted(truth.boxes[0] + [6, 0, 6, 0], [0.9]), predicted(truth.boxes[1][:1] + [0, 12, 0, 12], [0.8])]
    scores = coco_metrics(truth, shifted, 1)
    assert scores["ap50"] == pytest.approx(2 / 3, abs=0.01) and scores["ap75"] == 0.0
    assert coco_metrics(truth, [predicted(np.zeros((0, 4)), []), predicted(np.zeros((0, 4)), [])], 1)["map"] == 0.0
