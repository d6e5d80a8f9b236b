"""The photo models, built from explicit arguments (the tasks pass their config's fields):

    build_detector(num_classes, image_size=...)    keras-hub's RetinaNet on a `backbones.py` backbone, with its
                                                   preprocessor and the serving NMS; `compile_detector` gives it
                                                   the smooth-L1 box loss, `retinanet_initialization` the paper's
                                                   output layers
    build_segmenter(image_size=..., head=...)      uint8 images of any size -> foreground logits of the same size:
                                                   backbone + U-Net or DeepLabV3+ head, `ResizeToMatch` back;
                                                   `logits_at` runs it at another size, `encoder_of` finds the
                                                   backbone in it
"""

import keras
import numpy as np
import tensorflow as tf

from apps.vision.photos import backbones
from shared import layers

BOX_FORMAT = "xyxy"
MIN_LEVEL = 3
SPP_LEVEL, LOW_LEVEL = "P5", "P2"  # DeepLabV3+: ASPP at stride 32, the decoder's detail at stride 4


# === Detection ===


def build_detector(num_classes, *, image_size, backbone, pretrained, max_level, fpn_batch_norm, anchor_ratios,
                   anchor_size, head_convs, nms_iou_threshold, score_threshold, max_detections):
    """keras-hub's RetinaNet on `backbone` (`backbones.py`, ImageNet weights when `pretrained`) at `image_size` x
    `image_size`: FPN levels P3 to P`max_level`, anchors of `anchor_ratios` and `anchor_size` (in strides),
    `head_convs` convolutions before each head's output, its preprocessor, and the serving NMS
    (`nms_iou_threshold`, `score_threshold`, `max_detections`)."""
    import keras_hub

    shape = (image_size, image_size, 3)
    encoder = backbones.backbone(backbone, pretrained=pretrained, input_shape=shape)
    retina = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=MIN_LEVEL,
                                                max_level=max_level, use_p5=False, image_shape=shape,
                                                use_fpn_batch_norm=fpn_batch_norm)
    pixels = backbones.preprocessing(backbone)  # the scale the backbone was trained with
    converter = keras_hub.layers.RetinaNetImageConverter(scale=pixels.scale, offset=pixels.offset,
                                                         bounding_box_format=BOX_FORMAT)
    anchors = keras_hub.layers.AnchorGenerator(
        BOX_FORMAT, min_level=MIN_LEVEL, max_level=max_level, num_scales=3,
        aspect_ratios=list(anchor_ratios), anchor_size=anchor_size)
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=retina, anchor_generator=anchors, num_classes=num_classes, bounding_box_format=BOX_FORMAT,
        preprocessor=keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=converter),
        pre_logits_num_conv_layers=head_convs,
        prediction_decoder=keras_hub.layers.NonMaxSuppression(
            bounding_box_format=BOX_FORMAT, from_logits=True, iou_threshold=nms_iou_threshold,
            confidence_threshold=score_threshold, max_detections=max_detections),
    )
    retinanet_initialization(detector)
    return detector


def compile_detector(detector, optimizer, box_loss_beta):
    """keras-hub's losses (focal loss on the class logits, Huber on the box deltas, both summed over anchors and
    divided by the positive anchors), with the Huber loss made smooth L1 with `box_loss_beta`:
    Huber(delta=beta) weighted by 1 / beta is smooth L1, whose gradient is 1 for errors above beta."""
    detector.compile(optimizer=optimizer,
                     box_loss=keras.losses.Huber(delta=box_loss_beta, reduction="sum"),
                     loss_weights={"bbox_regression": 1.0 / box_loss_beta, "cls_logits": 1.0})


def retinanet_initialization(detector, seed=0):
    """The RetinaNet paper's initialization of the two heads' output convolutions (Lin et al. 2017, section 4.1):
    weights N(0, 0.01), box bias 0, class bias -log((1 - 0.01) / 0.01) so every anchor starts at p = 0.01.

    keras-hub 0.32 gives the prior bias to the BOX head (box deltas start at -4.6) and leaves the class head at
    p = 0.5, with Glorot-scale weights: on this data the first batch then had class logits up to 85 and a loss
    of about 1,350 (pretrained backbone), whose gradients wreck the pretrained features in the first epoch."""
    rng = np.random.default_rng(seed)
    prior = detector.classification_head.prior_probability
    for head, bias in ((detector.classification_head, -np.log((1 - prior) / prior)), (detector.box_head, 0.0)):
        layer = head.prediction_layer
        layer.kernel.assign(rng.normal(0.0, 0.01, layer.kernel.shape).astype(np.float32))
        layer.bias.assign(np.full(layer.bias.shape, bias, np.float32))


# === Segmentation ===


@keras.saving.register_keras_serializable(package="dlsuite_vision")
class ResizeToMatch(keras.layers.Layer):
    """Resizes `inputs[0]` ([b, h, w, c]) bilinearly to the height and width of `inputs[1]` ([b, H, W, ...]):
    the model's logits back to the size of the image it was given."""

    def call(self, inputs):
        values, reference = inputs
        # tf.image, not keras.ops.image: the target size is only known when the graph runs.
        return tf.image.resize(values, tf.shape(reference)[1:3], method="bilinear")

    def compute_output_shape(self, input_shapes):
        values, reference = input_shapes
        return (values[0], reference[1], reference[2], values[3])


def build_segmenter(*, image_size, backbone, pretrained, head, decoder_filters, dilation_rates, projection_filters,
                    batch_norm_momentum):
    """uint8 images [b, H, W, 3] of any size -> foreground logits [b, H, W, 1]; preprocessing inside.

    Resized to `image_size`, `backbone` (`backbones.py`, ImageNet weights when `pretrained`), then `head` "unet"
    (`unet_head`: `decoder_filters`) or "deeplabv3plus" (`deeplab_head`: `dilation_rates`, `projection_filters`);
    every batch normalization layer gets `batch_norm_momentum`. The layers between "resize" (to image_size) and
    "resize_to_input" take any side that is a multiple of 32: `logits_at` runs them at other sizes."""
    shape = (None, None, 3)
    # === Layers ===
    images = keras.Input((None, None, 3), dtype="uint8", name="images")
    x = keras.layers.Resizing(image_size, image_size, interpolation="bilinear", antialias=True,
                              name="resize")(keras.ops.cast(images, "float32"))
    x = backbones.preprocessing(backbone)(x)
    encoder = backbones.backbone(backbone, pretrained=pretrained, input_shape=shape)
    if head == "unet":
        logits = unet_head(encoder, shape, decoder_filters)(x)
    else:
        logits = deeplab_head(encoder, shape, dilation_rates, projection_filters)(x)
    logits = ResizeToMatch(dtype="float32", name="resize_to_input")([logits, images])
    # === Functional Model ===
    model = keras.Model(images, logits, name="segmenter")
    for layer in batch_norm_layers(model):
        layer.momentum = batch_norm_momentum
    return model


def logits_at(model, images, size):
    """A segmenter's logits for uint8 `images` [b, H, W, 3] when it resizes them to `size` x `size` instead of its
    image_size: the same layers and weights, with the "resize" layer's size changed."""
    resize = model.get_layer("resize")
    if size == resize.height:
        return model(images, training=False)
    names = [layer.name for layer in model.layers]
    x = keras.layers.Resizing.from_config({**resize.get_config(), "height": size, "width": size})(
        keras.ops.cast(images, "float32"))
    for layer in model.layers[names.index("resize") + 1:names.index("resize_to_input")]:
        x = layer(x, training=False)
    return model.get_layer("resize_to_input")([x, images])


def encoder_of(model, head):
    """The backbone inside a segmenter built with `head` (it trains at the config's `encoder_learning_rate`)."""
    if head == "unet":
        return model.get_layer("unet").get_layer("encoder")
    return model.get_layer("deeplab").get_layer("deeplab_v3_plus").image_encoder


def batch_norm_layers(layer):
    """Every BatchNormalization layer inside `layer`, nested models included."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [layer]
    return [found for inner in getattr(layer, "layers", []) for found in batch_norm_layers(inner)]


def unet_head(encoder, shape, decoder_filters):
    """A U-Net decoder on the encoder's pyramid (shared conv blocks): P5 reduced by a 1x1 conv, then at each of
    P4, P3, P2 a 2x bilinear upsampling, the skip features concatenated and a 3x3 conv block; logits at stride 4."""
    inputs = keras.Input(shape, name="pixels")
    features = keras.Model(encoder.inputs, encoder.pyramid_outputs, name="encoder")(inputs)
    x = layers.conv_block(features["P5"], decoder_filters[0], kernel_size=1, name="decoder_P5")
    for level, filters in zip(("P4", "P3", "P2"), decoder_filters[1:]):
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder_{level}_up")(x)
        x = keras.layers.Concatenate(name=f"decoder_{level}_skip")([x, features[level]])
        x = layers.conv_block(x, filters, name=f"decoder_{level}")
    logits = keras.layers.Conv2D(1, 1, dtype="float32", name="segmentation_output")(x)
    return keras.Model(inputs, logits, name="unet")


def deeplab_head(encoder, shape, dilation_rates, projection_filters):
    """keras-hub's DeepLabV3+ (ASPP with 256 channels on P5, the decoder joining P2) and a 1x1 conv to logits."""
    import keras_hub

    inputs = keras.Input(shape, name="pixels")
    deeplab = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, spatial_pyramid_pooling_key=SPP_LEVEL, low_level_feature_key=LOW_LEVEL,
        upsampling_size=2 ** (int(SPP_LEVEL[1]) - int(LOW_LEVEL[1])), dilation_rates=list(dilation_rates),
        projection_filters=projection_filters, image_shape=shape, name="deeplab_v3_plus")
    logits = keras.layers.Conv2D(1, 1, dtype="float32", name="segmentation_output")(deeplab(inputs))
    return keras.Model(inputs, logits, name="deeplab")
