"""Vision detection task: photographs of any size in, boxes, scores and class names out.

    photos (../data.py: Penn-Fudan, VOC or COCO; the seeded 70/10/20 split)
      -> tf.data: letterbox to image_size x image_size (resize the longer side, pad bottom/right; boxes scaled),
         cache, shuffle, batch, box-aware augmentation (keras.layers.RandomFlip / RandomZoom /
         RandomTranslation with bounding_box_format="xyxy", brightness and contrast)
      -> keras_hub.models.RetinaNetObjectDetector: its preprocessor scales pixels to the backbone's [-1, 1];
         EfficientNet-Lite0 (../backbones.py: ImageNet weights or from scratch; or ResNet-18 from scratch)
         -> FPN P3..P{max_level}
         -> box and class heads; focal loss + Huber loss on anchors (keras-hub's RetinaNetLabelEncoder)
      -> serving graph: letterbox each image, the detector, class-agnostic suppression with the score
         threshold as keras-hub's NonMaxSuppression does it (on the whole batch), boxes mapped back to the input
         image's pixels.

Serving signatures (uint8 RGB, boxes as (xmin, ymin, xmax, ymax) pixel edges of the input image):
    serving_default(images [n, H, W, 3])               one image per call (or n of one size)
    padded_batch(images [n, H, W, 3], sizes [n, 2])    images of different sizes padded at the bottom/right
                                                       to a common H x W, with each one's (height, width)
    -> boxes [n, max_detections, 4] float32, scores [n, max_detections], class_ids int32 (-1: no detection),
       class_names string ("" for none), num_detections [n]; detections are sorted by score.

Metrics: COCO's AP@[.5:.95], AP@0.5, AP@0.75 and AR with 1/10/100 detections, from pycocotools' COCOeval on
the test split's original-size images through `serving_default`; the figure draws the predictions (score
>= draw_threshold, red) and the true boxes (green) on test images.
"""

import contextlib
import io

import numpy as np
import tensorflow as tf

from apps.vision.photos import plots
from apps.vision.photos.models import BOX_FORMAT, build_detector, compile_detector
from apps.vision.photos.tasks.base import PhotoTask, augmentation
from shared import data as shared_data
from shared.app import Data, Endpoint, Report
from shared.optimizers import build_optimizer



# === Letterboxing: the one resize training and serving share ===


def letterbox(image, size, target):
    """`image[:size[0], :size[1]]` (uint8 [H, W, 3]) resized so its longer side is `target`, padded at the
    bottom/right to [target, target, 3] uint8; also `(scale_y, scale_x)`, new size / old size per axis."""
    size = tf.cast(size, tf.int32)
    image = image[:size[0], :size[1]]
    old = tf.cast(size, tf.float32)
    new = tf.maximum(1, tf.cast(tf.round(old * target / tf.reduce_max(old)), tf.int32))
    resized = tf.image.resize(image, new, antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return tf.image.pad_to_bounding_box(resized, 0, 0, target, target), tf.cast(new, tf.float32) / old


def _box_scale(scale):
    """(scale_y, scale_x) -> the factors of (xmin, ymin, xmax, ymax)."""
    return tf.stack([scale[..., 1], scale[..., 0], scale[..., 1], scale[..., 0]], axis=-1)


# === Data ===


def photo_dataset(part, config, max_boxes, training):
    """Batches of `(float32 images [b, S, S, 3] in [0, 255], {"boxes": [b, max_boxes, 4], "labels": [b,
    max_boxes]})`, padded boxes labelled -1; letterboxed inside tf.data, augmented when training."""
    target = config.image_size

    def generate():
        yield from zip(part.images, part.boxes, part.labels)

    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, 4], tf.float32),
        tf.TensorSpec([None], tf.int32)))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(part)))

    def prepare(image, boxes, labels):
        padded, scale = letterbox(image, tf.shape(image)[:2], target)
        count = tf.shape(boxes)[0]
        boxes = tf.pad(boxes * _box_scale(scale), [[0, max_boxes - count], [0, 0]])
        labels = tf.pad(labels, [[0, max_boxes - count]], constant_values=-1)
        return padded, {"boxes": tf.ensure_shape(boxes, [max_boxes, 4]), "labels": tf.ensure_shape(labels, [max_boxes])}

    augment = augmentation(config, bounding_box_format=BOX_FORMAT) if training else None

    def to_float(images, targets):
        images = tf.cast(images, tf.float32)
        if augment is None:
            return images, targets
        out = augment({"images": images, "bounding_boxes": targets})
        return out["images"], {"boxes": out["bounding_boxes"]["boxes"], "labels": out["bounding_boxes"]["labels"]}

    return shared_data.pipeline(dataset, config.batch_size if training else config.batch_size * 2, shuffle=training,
                                seed=config.seed, map_fn=prepare, batch_map_fn=to_float)


# === Metrics ===


COCO_STATS = {"map": 0, "ap50": 1, "ap75": 2, "ar1": 6, "ar10": 7, "ar100": 8}


def coco_metrics(truth, predictions, num_classes):
    """COCO box metrics (pycocotools COCOeval) of `predictions` (one dict of numpy arrays per image: boxes
    [k, 4] xyxy, scores [k], class_ids [k]) against `truth` (`photos.Photos`). Undefined values are 0."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    for number, (image, boxes, labels, predicted) in enumerate(zip(truth.images, truth.boxes, truth.labels,
                                                                     predictions), 1):
        images.append({"id": number, "height": int(image.shape[0]), "width": int(image.shape[1])})
        for box, label in zip(boxes, labels):
            width, height = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": number, "category_id": int(label) + 1,
                                "bbox": [float(box[0]), float(box[1]), width, height], "area": width * height,
                                "iscrowd": 0})
        for box, score, label in zip(predicted["boxes"], predicted["scores"], predicted["class_ids"]):
            detections.append([number, box[0], box[1], box[2] - box[0], box[3] - box[1], score, label + 1])
    if not detections:
        return {name: 0.0 for name in COCO_STATS}
    ground_truth = COCO()
    ground_truth.dataset = {"images": images, "annotations": annotations,
                            "categories": [{"id": index + 1, "name": str(index)} for index in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(np.asarray(detections, np.float64)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: max(0.0, float(evaluation.stats[index])) for name, index in COCO_STATS.items()}


# === The task ===


class DetectionTask(PhotoTask):
    name = "detection"
    serving_keys = ("score_threshold", "nms_iou_threshold", "max_detections")
    monitor = "val_loss"
    monitor_mode = "min"
    headline = ("test_map", "max")  # COCO's AP@[.5:.95] on the test photos
    precision_refusal = ("keras-hub's RetinaNet decodes its 16-bit box deltas against float32 anchors and fails "
                         "(keras' bounding_boxes converters multiply the two without a cast)")

    # === Inputs ===

    def fingerprint_arrays(self, part):
        return zip(part.images, part.boxes, part.labels)

    def build_data(self, config, source):
        every, parts, records = self.split(config, source)
        max_boxes = max(1, max(len(labels) for labels in every.labels))
        return Data(
            train=photo_dataset(parts["train"], config, max_boxes, training=True),
            validation=photo_dataset(parts["validation"], config, max_boxes, training=False),
            test=parts["test"], records=records,
            info={"class_names": list(every.class_names), "image_size": config.image_size,
                  "data_format": config.data_format, "max_boxes": max_boxes,
                  "split_sizes": {split: len(part) for split, part in parts.items()},
                  "num_objects": {split: part.num_objects for split, part in parts.items()}},
        )

    # === Model ===

    def build_model(self, config, data):
        model = self.network(config, num_classes=len(data.info["class_names"]))
        optimizer = build_optimizer(config, shared_data.steps_per_epoch(data.train),
                                    encoder=model.backbone.image_encoder)
        compile_detector(model, optimizer, box_loss_beta=config.box_loss_beta)
        return model

    def network(self, config, num_classes):
        """The uncompiled detector `models.py` builds from the config's fields."""
        return build_detector(
            num_classes, image_size=config.image_size, backbone=config.backbone, pretrained=config.pretrained,
            max_level=config.max_level, fpn_batch_norm=config.fpn_batch_norm, anchor_ratios=config.anchor_ratios,
            anchor_size=config.anchor_size, head_convs=config.head_convs, nms_iou_threshold=config.nms_iou_threshold,
            score_threshold=config.score_threshold, max_detections=config.max_detections)

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        target = int(info["image_size"])
        class_names = tf.constant(list(info["class_names"]))
        converter = model.preprocessor.image_converter

        def found(predictions, pixels, sizes, scales):
            batch = decode_batch(model, predictions, pixels, iou_threshold=config.nms_iou_threshold,
                                 score_threshold=config.score_threshold, max_detections=config.max_detections)
            count = batch["num_detections"]
            valid = tf.range(tf.shape(batch["confidence"])[1])[None] < count[:, None]
            limits = tf.cast(tf.stack([sizes[:, 1], sizes[:, 0], sizes[:, 1], sizes[:, 0]], axis=-1), tf.float32)
            boxes = tf.clip_by_value(batch["boxes"] / _box_scale(scales)[:, None], 0.0, limits[:, None])
            class_ids = tf.where(valid, batch["labels"], -1)
            return {
                "boxes": tf.where(valid[..., None], boxes, 0.0),
                "scores": tf.where(valid, batch["confidence"], 0.0),
                "class_ids": class_ids,
                "class_names": tf.where(valid, tf.gather(class_names, tf.maximum(class_ids, 0)), ""),
                "num_detections": count,
            }

        def detect(images, sizes):
            # Each image letterboxed to target x target at its own size; the network, the box decoding and the
            # suppression each run once on the whole batch (a network call per image cost 3.6x the CPU per image).
            padded, scales = tf.map_fn(lambda inputs: letterbox(*inputs, target), (images, sizes),
                                       fn_output_signature=(tf.TensorSpec([target, target, 3], tf.uint8),
                                                            tf.TensorSpec([2], tf.float32)))
            pixels = converter(tf.cast(padded, tf.float32))
            predictions = model(pixels, training=False)
            return found(predictions, pixels, sizes, scales)

        def serve(images):
            shape = tf.shape(images)
            return detect(images, tf.tile(shape[None, 1:3], [shape[0], 1]))

        def padded_batch(images, sizes):
            with tf.control_dependencies(check_sizes(images, sizes)):
                return detect(images, tf.identity(sizes))

        images = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        return {"serving_default": Endpoint(serve, [images]),
                "padded_batch": Endpoint(padded_batch, [images, tf.TensorSpec([None, 2], tf.int32, name="sizes")])}

    def example_inputs(self, data):
        return {"images": data.test.images[0][None]}

    def signature_examples(self, data):
        return {"serving_default": self.example_inputs(data), "padded_batch": pad_batch(data.test.images[:2])}

    def evaluate(self, serving, data, config):
        test = data.test
        predictions = [{key: value[0] for key, value in serving(images=image[None]).items()} for image in test.images]
        predictions = [{key: value[:int(found["num_detections"])] if np.ndim(value) else value
                        for key, value in found.items()} for found in predictions]
        scores = coco_metrics(test, predictions, len(test.class_names))
        report = Report(metrics={f"test_{name}": value for name, value in scores.items()})
        shown = min(config.num_drawn, len(test))
        if shown:
            report.figures["test_detections.png"] = plots.draw_detections(
                test.images[:shown], test.boxes[:shown], predictions[:shown], test.class_names,
                config.draw_threshold)
        return report


def decode_batch(model, predictions, pixels, *, iou_threshold, score_threshold, max_detections):
    """What keras-hub's `RetinaNetObjectDetector.decode_predictions` returns (boxes in the letterbox's pixels,
    confidence, labels, num_detections), for a batch whose size is known only when it runs: the detector's
    `NonMaxSuppression` layer sizes its loops by the static batch size. The same steps: anchor deltas decoded
    to boxes, the class logits' sigmoid, the best class's score per box, class-agnostic suppression with
    `iou_threshold`, `score_threshold` and `max_detections`, by TensorFlow's `non_max_suppression_padded`, the
    algorithm the layer ports (the test holds them equal)."""
    import keras

    anchors = tf.concat(list(model.anchor_generator(pixels).values()), axis=0)
    boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
        anchors=anchors, boxes_delta=tf.cast(predictions["bbox_regression"], tf.float32), encoded_format="center_xywh",
        anchor_format=model.anchor_generator.bounding_box_format, box_format=BOX_FORMAT,
        image_shape=tuple(pixels.shape[1:]))
    scores = tf.sigmoid(tf.cast(predictions["cls_logits"], tf.float32))
    confidence = tf.reduce_max(scores, axis=-1)
    yxyx = tf.gather(boxes, [1, 0, 3, 2], axis=-1)  # (ymin, xmin, ymax, xmax), the order the suppression takes
    chosen, count = tf.image.non_max_suppression_padded(
        yxyx, confidence, max_detections, iou_threshold=iou_threshold, score_threshold=score_threshold,
        pad_to_max_output_size=True)
    return {"boxes": tf.gather(boxes, chosen, batch_dims=1), "confidence": tf.gather(confidence, chosen, batch_dims=1),
            "labels": tf.argmax(tf.gather(scores, chosen, batch_dims=1), axis=-1, output_type=tf.int32),
            "num_detections": count}


def check_sizes(images, sizes):
    """Asserts that `sizes` holds one (height, width) per image, each from 1 to the padded images' side (a size
    outside it gave meaningless boxes, or an error quoting TensorFlow's graph)."""
    side = tf.shape(images)[1:3]
    rows = tf.debugging.Assert(tf.equal(tf.shape(sizes)[0], tf.shape(images)[0]), [tf.strings.format(
        "Invalid sizes for padded_batch: not one row per image. Received: {} rows of sizes for {} images. Expected "
        "one (height, width) row per image.", (tf.shape(sizes)[0], tf.shape(images)[0]))])
    with tf.control_dependencies([rows]):
        bad = tf.reduce_any((sizes < 1) | (sizes > side), axis=1)
        first = tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)
        values = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [tf.strings.format(
            "Invalid sizes for padded_batch. Received: sizes row {} = {} for images padded to height and width {}. "
            "Expected each image's own (height, width), from 1 to the padded height and width. Fix: pad the images "
            "at the bottom/right and send their sizes before padding.", (first, tf.gather(sizes, first), side))])
    return [rows, values]


def pad_batch(images):
    """`{"images": uint8 [n, H, W, 3], "sizes": int32 [n, 2]}`: images padded at the bottom/right to the largest
    height and width, for `padded_batch`."""
    height, width = max(image.shape[0] for image in images), max(image.shape[1] for image in images)
    batch = np.zeros((len(images), height, width, 3), np.uint8)
    for number, image in enumerate(images):
        batch[number, :image.shape[0], :image.shape[1]] = image
    return {"images": batch, "sizes": np.asarray([image.shape[:2] for image in images], np.int32)}
