"""The configs and presets of the photograph tasks, detection and segmentation (`TASKS`, which
`apps/vision/config.py` adds to the app's TASKS). No TensorFlow here: `dlsuite list` reads this module (the
format and backbone names come from `records.py` and `backbones.py`, which import numpy only)."""

import dataclasses
import typing

from apps.vision.classification.config import check_test_time_flip
from apps.vision.photos.backbones import BACKBONES, PRETRAINED
from apps.vision.photos.records import FORMATS, MASK_FORMATS
from shared.checks import check_choice, check_range, check_sizes
from shared.config import SupervisedConfig, TaskSpec


def check_side(name, value, within=None):
    """An image side the backbone takes: a multiple of 32 (its stride) from 32 to 1024. `within`: the tuple the
    side is an item of, when config key `name` is a list of sides."""
    if 32 <= value <= 1024 and value % 32 == 0:
        return
    from shared.errors import ConfigError

    nearest = lambda side: min(1024, max(32, int(side) // 32 * 32))  # noqa: E731
    received, fix = (f"{name}={value!r}", nearest(value)) if within is None else (
        f"{name}={tuple(within)!r}, with {value}", ",".join(str(nearest(side)) for side in within))
    raise ConfigError(
        f"Invalid value for config key {name}. Received: {received}. Expected a multiple of 32 (the backbone's "
        f"stride) from 32 to 1024. Fix: --set {name}={fix}."
    )


# === Detection (tasks/detection.py) ===


@dataclasses.dataclass(frozen=True)
class PhotoConfig(SupervisedConfig):
    """What detection and segmentation share: the photo layout, the seeded split, the backbone, the input size
    and the augmentations (`data.py`)."""

    FORMATS = FORMATS  # the layouts the task reads

    data_format: str = "penn_fudan"  # penn_fudan, voc, coco (README.md: the layouts)
    class_names: typing.Tuple[str, ...] = ()  # VOC/COCO: the classes to learn (segmentation: foreground); () = all found
    split_seed: int = 2024  # the 70/10/20 train/validation/test split (the same for both tasks)
    backbone: str = "efficientnet_lite0"  # or resnet18 (from scratch only: no weights for it here)
    pretrained: bool = True  # ImageNet weights (converted once in the setup), else the same network from scratch
    # The backbone's own learning rate (the rest trains at learning_rate, the same schedule for both); None: one
    # learning rate for everything.
    encoder_learning_rate: typing.Optional[float] = None
    image_size: int = 320  # training and serving resolution; a multiple of 32
    random_flip: bool = True
    random_zoom: float = 0.2  # scale jitter, a fraction of the size (keras.layers.RandomZoom; boxes and masks follow)
    random_translation: float = 0.1  # shifts, a fraction of the size (boxes and masks follow)
    color_jitter: float = 0.2  # brightness and contrast, a fraction
    num_drawn: int = 8  # test images drawn with their predictions (the MLflow figure)

    def __post_init__(self):
        super().__post_init__()
        check_choice("data_format", self.data_format, self.FORMATS)
        check_choice("backbone", self.backbone, BACKBONES)
        if self.pretrained and self.backbone not in PRETRAINED:
            from shared.errors import ConfigError

            raise ConfigError(
                f"No pretrained weights for this backbone here. Received: backbone={self.backbone!r} with "
                f"pretrained=True. Expected pretrained=false (trained from scratch) with {self.backbone}, or a "
                f"backbone with ImageNet weights: {', '.join(PRETRAINED)}. Fix: --set pretrained=false, or "
                f"--set backbone={PRETRAINED[0]}."
            )
        check_range("encoder_learning_rate", self.encoder_learning_rate, 0, low_inclusive=False)
        check_range("split_seed", self.split_seed, 0, 2**31 - 1)
        check_side("image_size", self.image_size)
        check_range("random_zoom", self.random_zoom, 0, 0.5)
        check_range("random_translation", self.random_translation, 0, 0.5)
        check_range("color_jitter", self.color_jitter, 0, 1)
        check_range("num_drawn", self.num_drawn, 0, 64)


@dataclasses.dataclass(frozen=True)
class DetectionConfig(PhotoConfig):
    """Object detection on photographs: keras-hub RetinaNet (FPN P3-P7, focal loss) on EfficientNet-Lite0.

    Images are letterboxed (resized so the longer side is `image_size`, padded at the bottom/right) inside
    tf.data; serving does the same in its graph and maps the boxes back to the input's pixels.
    """

    image_size: int = 320  # training and serving resolution (the longer side); a multiple of 32
    head_convs: int = 2  # convolutions before each RetinaNet head's output (keras-hub's default is 4)
    max_level: int = 6  # the coarsest FPN level (stride 2**max_level); levels start at P3
    # Batch norm after the FPN's convolutions: the pretrained backbone's P3/P4 maps are about 3x larger than a fresh
    # network's, which without it start the heads at class logits up to 15 (a loss of ~40 instead of ~7).
    fpn_batch_norm: bool = True
    anchor_ratios: typing.Tuple[float, ...] = (0.5, 1.0, 2.0)  # anchor height / width (pedestrians: about 2.5)
    anchor_size: float = 4.0  # the base anchor side in strides of its level (P3: 4 x 8 = 32 px)
    # The box loss: smooth L1 with this beta (Keras's Huber(delta=beta) / beta) on the anchors' box deltas, as
    # Detectron's RetinaNet (beta 0.11); torchvision's is plain L1. keras-hub's default, Huber(1.0), is beta=1:
    # the deltas are mostly below 0.3, where Huber(1.0) is quadratic, so the box head got a tenth of the gradient.
    box_loss_beta: float = 0.11
    score_threshold: float = 0.05  # detections below it are dropped in the serving graph (COCO AP needs low ones)
    nms_iou_threshold: float = 0.5
    max_detections: int = 50
    draw_threshold: float = 0.5  # the boxes drawn on the test images (the figure), not what serving returns

    def __post_init__(self):
        super().__post_init__()
        check_range("head_convs", self.head_convs, 0, 4)
        check_range("max_level", self.max_level, 5, 7)
        if not self.anchor_ratios or min(self.anchor_ratios) <= 0:
            from shared.errors import ConfigError

            raise ConfigError(
                f"Invalid value for config key anchor_ratios. Received: anchor_ratios={self.anchor_ratios!r}. "
                "Expected one or more positive height/width ratios. Fix: --set anchor_ratios=0.5,1,2.")
        check_range("anchor_size", self.anchor_size, 0.5, 16)
        check_range("box_loss_beta", self.box_loss_beta, 0, 1, low_inclusive=False)
        check_range("score_threshold", self.score_threshold, 0, 1)
        check_range("nms_iou_threshold", self.nms_iou_threshold, 0, 1, low_inclusive=False)
        check_range("max_detections", self.max_detections, 1, 1000)
        check_range("draw_threshold", self.draw_threshold, 0, 1)


def detection_default():
    """Penn-Fudan pedestrians with the pretrained backbone, 50 epochs of 119 photos, smooth-L1 box loss (AP@0.5 0.91
    on the test split, seed 42; 0.65 with keras-hub's Huber box loss, 0.23 after 10 epochs):
    benchmarks/vision_detection.py, numbers in README.md. About 15 s an epoch on 2 quiet cores after the
    first (tracing), 20-50 s beside other jobs."""
    return DetectionConfig(
        epochs=50, batch_size=8, optimizer="adamw", learning_rate=5e-4, weight_decay=1e-4,
        learning_rate_schedule="cosine", warmup_epochs=1, early_stopping_patience=0, anchor_ratios=(1.0, 2.0, 3.0),
        image_size=256, head_convs=0,
    )


def detection_smoke():
    """Tiny images, one epoch, ResNet-18 from scratch (it traces in a third of EfficientNet's time): seconds. For CI
    and trying the pipeline."""
    return dataclasses.replace(detection_default(), epochs=1, warmup_epochs=0, batch_size=4, image_size=64,
                               head_convs=0, max_level=5, anchor_size=2.0, backbone="resnet18", pretrained=False,
                               max_train_examples=8,
                               max_test_examples=4, num_drawn=2)


TASKS = {}
TASKS["detection"] = TaskSpec(
    description="RetinaNet on EfficientNet-Lite0 (ImageNet or scratch) or ResNet-18, Penn-Fudan/VOC/COCO; serves uint8 "
                "images of any size -> boxes, scores, class names.",
    config_class=DetectionConfig, presets={"default": detection_default, "smoke": detection_smoke},
    task_class="apps.vision.photos.tasks.detection:DetectionTask",
)


# === Segmentation (tasks/segmentation.py) ===


@dataclasses.dataclass(frozen=True)
class SegmentationConfig(PhotoConfig):
    """Foreground (pedestrian) vs background per pixel: a U-Net decoder (or keras-hub's DeepLabV3+) on
    EfficientNet-Lite0.

    The model takes uint8 images of any size, resizes them to `image_size` x `image_size` inside its graph,
    and answers logits resized back to the input's height and width. The U-Net decoder climbs the encoder's
    pyramid from stride 32 to stride 4 (`decoder_filters`); DeepLabV3+ runs ASPP (`dilation_rates`, 256
    channels) on the stride-32 features and joins the stride-4 ones (`projection_filters` channels): about
    three times the U-Net's compute at the same size. The encoder and decoder take any multiple of 32, so serving
    can also run at `test_time_sizes` and average.
    """

    FORMATS = MASK_FORMATS  # the photo layouts with masks

    image_size: int = 320  # the side the model resizes every image to; a multiple of 32
    head: str = "unet"  # "unet" (a light decoder of shared conv blocks) or "deeplabv3plus" (keras-hub's)
    decoder_filters: typing.Tuple[int, ...] = (96, 64, 48, 32)  # unet: widths at strides 32, 16, 8, 4
    dilation_rates: typing.Tuple[int, ...] = (2, 4, 6)  # deeplabv3plus: ASPP on the stride-32 map (10 x 10 at 320 px)
    projection_filters: int = 48  # deeplabv3plus: the stride-4 features' channels in the decoder
    dice_weight: float = 1.0  # loss = binary cross-entropy + dice_weight * soft Dice loss
    # Every batch norm layer's: Keras's 0.99 leaves the moving statistics mostly at their starting values after
    # the ~100 steps a Penn-Fudan run has (0.99**100 = 0.37), so validation disagreed with training.
    batch_norm_momentum: float = 0.9
    threshold: float = 0.5  # probability above which serving marks a pixel as foreground
    # Serving (and so the test metrics) averages the probabilities for each image and for its mirror image, mirrored
    # back, as the classifier does: two forward passes a request. None: whenever training flips (`random_flip`).
    # Validation IoU +0.008 to +0.018 on four trained models (apps/vision/photos/README.md); training is unchanged.
    test_time_flip: typing.Optional[bool] = None
    # Serving also resizes each image to these sides (multiples of 32) and averages the probabilities at every size
    # with those at image_size (each with its mirror image under test_time_flip): multi-scale inference, one forward
    # pass a size. () = image_size only.
    test_time_sizes: typing.Tuple[int, ...] = ()

    @property
    def averages_mirror(self):
        """Whether serving averages the image's and its mirror image's probabilities."""
        return self.test_time_flip if self.test_time_flip is not None else self.random_flip

    def __post_init__(self):
        super().__post_init__()
        check_choice("head", self.head, ("unet", "deeplabv3plus"))
        check_sizes("decoder_filters", self.decoder_filters, "96,64,48,32", count=(4, 4),
                    meaning=", the U-Net decoder's widths at strides 32, 16, 8 and 4")
        check_sizes("dilation_rates", self.dilation_rates, "2,4,6")
        check_range("projection_filters", self.projection_filters, 1, 512)
        check_range("dice_weight", self.dice_weight, 0)
        check_range("batch_norm_momentum", self.batch_norm_momentum, 0, 1, high_inclusive=False)
        check_range("threshold", self.threshold, 0, 1, low_inclusive=False, high_inclusive=False)
        for side in self.test_time_sizes:
            check_side("test_time_sizes", side, within=self.test_time_sizes)
        check_test_time_flip(self.test_time_flip, self.random_flip, f"random_flip={self.random_flip}")


def segmentation_default():
    """Penn-Fudan pedestrians with the pretrained backbone at 416 px, 40 epochs, AdamW 2e-3, served at 352, 416 and
    480 px, each with its mirror image, averaged (test IoU 0.814, 0.801, 0.812, 0.802 on seeds 42, 1, 2, 3; with
    the mirror alone 0.803, 0.804, 0.803, 0.798): benchmarks/vision_segmentation.py, numbers in
    apps/vision/photos/README.md. About 50 s an epoch on 2 quiet cores after the first (tracing), 60-90 s beside another
    job."""
    return SegmentationConfig(
        epochs=40, batch_size=8, optimizer="adamw", learning_rate=2e-3, weight_decay=1e-4,
        learning_rate_schedule="cosine", warmup_epochs=1, early_stopping_patience=0, image_size=416,
        test_time_sizes=(352, 480),
    )


def segmentation_smoke():
    """Tiny images, one epoch, ResNet-18 from scratch (it traces in a third of EfficientNet's time): seconds. For CI
    and trying the pipeline."""
    return dataclasses.replace(segmentation_default(), epochs=1, warmup_epochs=0, batch_size=4, image_size=64,
                               learning_rate=1e-3, backbone="resnet18", pretrained=False, decoder_filters=(16, 8, 8, 8),
                               test_time_sizes=(96,),
                               projection_filters=8, max_train_examples=8, max_test_examples=4, num_drawn=2)


TASKS["segmentation"] = TaskSpec(
    description="Pedestrian vs background per pixel: U-Net or DeepLabV3+ on EfficientNet-Lite0 (ImageNet or "
                "scratch) or ResNet-18; serves uint8 images of any size -> a mask of the same size.",
    config_class=SegmentationConfig, presets={"default": segmentation_default, "smoke": segmentation_smoke},
    task_class="apps.vision.photos.tasks.segmentation:SegmentationTask",
)
