"""Vision segmentation task: photographs of any size in, a foreground (pedestrian) mask of the same size out.

    photos (../data.py: Penn-Fudan or COCO with polygons/RLE; the seeded 70/10/20 split shared
    with detection); the instance masks become one foreground mask (any object = 1)
      -> tf.data: resize to image_size x image_size (images bilinear with antialiasing, masks nearest), cache,
         shuffle, batch, augmentation that moves the masks with the pixels (keras.layers.RandomFlip /
         RandomZoom / RandomTranslation given {"images", "segmentation_masks"}; brightness and contrast)
      -> the model, uint8 [b, H, W, 3] of any H, W:
         Resizing(image_size) -> the backbone's pixel scale (../backbones.py) -> EfficientNet-Lite0
         (ImageNet weights or from scratch; or ResNet-18 from scratch) -> head "unet" (default: shared conv
         blocks climbing P5 -> P4 -> P3 -> P2 with skip connections) or "deeplabv3plus" (keras-hub's
         DeepLabV3Backbone: ASPP on the stride-32 map, decoder with the stride-4 map) -> a 1x1 conv to one
         logit at stride 4
         -> ResizeToMatch (bilinear, back to H x W)
      -> loss: binary cross-entropy + `dice_weight` x soft Dice, on the image_size x image_size logits.

Serving: `serving_default(images uint8 [n, H, W, 3])` -> `masks` uint8 [n, H, W] (1 = foreground, probability
>= config.threshold) and `probabilities` float32 [n, H, W]: with `test_time_flip` (by default whenever training
flips), the mean of the image's probabilities and its mirror image's, mirrored back. (The classifier does this
inside its Keras model, `apps.vision.classification.layers.MirrorAverage`, on probabilities; this model answers
logits, which the loss needs, so the mean of probabilities is taken in serving.) With `test_time_sizes`, the mean
over image_size and those sizes too (`logits_at`: the same layers, resized to another side). Any H and W; images
of different sizes go in separate calls.

Metrics, on the test split's original-size images through serving, pixels pooled over the split: IoU and Dice
of the foreground class, IoU of the background, their mean (mIoU), pixel accuracy, and the mean of per-image
foreground IoUs. The figure overlays the predicted masks (red) and the true outlines (green) on test images.
"""


import keras
import numpy as np
import tensorflow as tf

from apps.vision.photos import plots
from apps.vision.photos.models import build_segmenter, encoder_of, logits_at
from apps.vision.photos.tasks.base import PhotoTask, augmentation
from shared import data as shared_data
from shared.app import Data, Endpoint, Report
from shared.errors import DataError
from shared.optimizers import build_optimizer


# === Data ===


def foreground(mask):
    """Instance ids (0 background, k object k) -> uint8 0/1."""
    return (np.asarray(mask) > 0).astype(np.uint8)


def resize_pair(image, mask, size):
    """image uint8 [H, W, 3] -> float32 [S, S, 3] (what the model's Resizing layer computes); mask -> [S, S, 1]."""
    pixels = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    mask = tf.image.resize(mask[..., None], (size, size), method="nearest")
    return pixels, tf.cast(mask, tf.float32)


def photo_dataset(part, config, training):
    """Batches of `(float32 images [b, S, S, 3] in [0, 255], float32 masks [b, S, S, 1])`, augmented when training."""

    def generate():
        for image, mask in zip(part.images, part.masks):
            yield image, foreground(mask)

    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, None], tf.uint8)))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(part)))
    augment = augmentation(config) if training else None

    def augmented(images, masks):
        out = augment({"images": images, "segmentation_masks": masks})
        return out["images"], tf.round(out["segmentation_masks"])

    return shared_data.pipeline(
        dataset, config.batch_size if training else config.batch_size * 2, shuffle=training, seed=config.seed,
        map_fn=lambda image, mask: resize_pair(image, mask, config.image_size),
        batch_map_fn=augmented if augment else None)


# === Loss ===


@keras.saving.register_keras_serializable(package="dlsuite_vision")
def dice_loss(masks, logits):
    """1 - soft Dice of the foreground, per image."""
    probabilities = keras.ops.sigmoid(logits)
    intersection = keras.ops.sum(masks * probabilities, axis=(1, 2, 3))
    total = keras.ops.sum(masks, axis=(1, 2, 3)) + keras.ops.sum(probabilities, axis=(1, 2, 3))
    return 1.0 - (2.0 * intersection + 1.0) / (total + 1.0)


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class SegmentationLoss(keras.losses.Loss):
    """Binary cross-entropy on logits + `dice_weight` x soft Dice loss."""

    def __init__(self, dice_weight=1.0, name="segmentation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = dice_weight

    def call(self, masks, logits):
        cross_entropy = keras.ops.mean(keras.losses.binary_crossentropy(masks, logits, from_logits=True), axis=(1, 2))
        return cross_entropy + self.dice_weight * dice_loss(masks, logits)

    def get_config(self):
        return {**super().get_config(), "dice_weight": self.dice_weight}


# === Metrics ===


def confusion(truth, predicted):
    """(tp, fp, fn, tn) pixel counts of the foreground class."""
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    tp = int(np.sum(truth & predicted))
    fp = int(np.sum(~truth & predicted))
    fn = int(np.sum(truth & ~predicted))
    return tp, fp, fn, int(truth.size) - tp - fp - fn


def scores(counts):
    """Metrics from summed (tp, fp, fn, tn); a ratio with an empty denominator counts as 1 (nothing to miss)."""
    tp, fp, fn, tn = counts
    ratio = lambda num, den: num / den if den else 1.0  # noqa: E731
    iou, background_iou = ratio(tp, tp + fp + fn), ratio(tn, tn + fp + fn)
    return {"iou": iou, "dice": ratio(2 * tp, 2 * tp + fp + fn), "background_iou": background_iou,
            "miou": (iou + background_iou) / 2, "pixel_accuracy": ratio(tp + tn, tp + fp + fn + tn)}


# === The task ===


class SegmentationTask(PhotoTask):
    name = "segmentation"
    serving_keys = ("test_time_flip", "test_time_sizes")
    monitor = "val_iou"
    monitor_mode = "max"

    # === Inputs ===

    def check_photos(self, index, folder, config):
        without = [record.name for record in index.records
                   if record.mask_path is None and record.segmentations is None]
        if without:
            raise DataError(
                f"Photos without masks. Received: {len(without)} of {len(index.records)} photos in {folder} "
                f"({', '.join(without[:3])}{', ...' if len(without) > 3 else ''}) have no mask "
                f"(data_format={config.data_format}). Expected a mask for every photo: Penn-Fudan's PedMasks, or a "
                "COCO 'segmentation' (polygons or RLE) on every object. Fix: add them, or train `detection`, which "
                "needs boxes only."
            )

    def fingerprint_arrays(self, part):
        return ((image, foreground(mask)) for image, mask in zip(part.images, part.masks))

    def build_data(self, config, source):
        every, parts, records = self.split(config, source)
        foreground_name = "pedestrian" if config.data_format == "penn_fudan" else "+".join(every.class_names)
        return Data(
            train=photo_dataset(parts["train"], config, training=True),
            validation=photo_dataset(parts["validation"], config, training=False),
            test=parts["test"], records=records,
            info={"foreground": foreground_name, "image_size": config.image_size, "data_format": config.data_format,
                  "threshold": config.threshold,
                  "split_sizes": {split: len(part) for split, part in parts.items()}},
        )

    # === Model ===

    def build_model(self, config, data):
        model = self.network(config)
        model.compile(
            optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train),
                                      encoder=encoder_of(model, config.head)),
            loss=SegmentationLoss(config.dice_weight),
            metrics=[keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.0, name="iou"),  # logits: 0 = p 0.5
                     keras.metrics.BinaryAccuracy(threshold=0.0, name="pixel_accuracy")],
            jit_compile=False,  # XLA compiles this graph for minutes on CPU and runs no faster
        )
        return model

    def network(self, config):
        """The uncompiled segmenter `models.py` builds from the config's fields."""
        return build_segmenter(
            image_size=config.image_size, backbone=config.backbone, pretrained=config.pretrained, head=config.head,
            decoder_filters=config.decoder_filters, dilation_rates=config.dilation_rates,
            projection_filters=config.projection_filters, batch_norm_momentum=config.batch_norm_momentum)

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        threshold = float(info["threshold"])
        sizes = tuple(dict.fromkeys((config.image_size, *config.test_time_sizes)))  # each size once

        def probabilities_of(images):  # the mean over the sizes
            return tf.add_n([tf.sigmoid(logits_at(model, images, size)[..., 0]) for size in sizes]) / len(sizes)

        def serve(images):
            if config.averages_mirror:  # the mirror image's answer, mirrored back, averaged in
                # The mirror images ride in the same batch: half the network calls, each on twice the rows.
                count = tf.shape(images)[0]
                both = probabilities_of(tf.concat([images, tf.reverse(images, axis=[2])], axis=0))
                probabilities = (both[:count] + tf.reverse(both[count:], axis=[2])) / 2
            else:
                probabilities = probabilities_of(images)
            return {"masks": tf.cast(probabilities >= threshold, tf.uint8), "probabilities": probabilities}

        return {"serving_default": Endpoint(serve, [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])}

    def example_inputs(self, data):
        return {"images": data.test.images[0][None]}

    def evaluate(self, serving, data, config):
        test = data.test
        totals, ious, predictions = np.zeros(4, np.int64), [], []
        for image, mask in zip(test.images, test.masks):
            predicted = serving(images=image[None])["masks"][0]
            counts = confusion(foreground(mask), predicted)
            totals += counts
            ious.append(scores(counts)["iou"])
            predictions.append(predicted)
        report = Report(metrics={f"test_{name}": float(value) for name, value in scores(totals).items()})
        report.metrics["test_mean_image_iou"] = float(np.mean(ious))
        shown = min(config.num_drawn, len(test))
        if shown:
            report.figures["test_overlays.png"] = plots.draw_overlays(
                test.images[:shown], [foreground(mask) for mask in test.masks[:shown]], predictions[:shown],
                ious[:shown])
        return report
