"""The pretrained speech embedding (apps/speech/embedding.py): its Keras layers answer as the pinned ONNX files do
under onnxruntime, on FSDD clips; a file that differs from the pinned one is refused before it is read; the
embedding classifier's model saves and reloads with the same answers."""

import shutil

import numpy as np
import pytest
import scipy.signal

from apps.speech import embedding
from shared.errors import DataError

CLIPS = ("0_george_0.wav", "7_jackson_12.wav", "3_nicolas_40.wav", "9_yweweler_3.wav")


@pytest.fixture(scope="module")
def clips_16k(data_root):
    """FSDD clips as int16-valued float32 at 16 kHz (scipy's resample_poly), each padded to one second."""
    import scipy.io.wavfile

    clips = []
    for name in CLIPS:
        _rate, samples = scipy.io.wavfile.read(data_root / "fsdd" / "recordings" / name)
        upsampled = scipy.signal.resample_poly(samples.astype(np.float64), 2, 1).astype(np.float32)
        clips.append(np.pad(upsampled, (0, max(0, 16000 - len(upsampled))))[:16000])
    return np.stack(clips)


@pytest.fixture(scope="module")
def onnx_sessions():
    import onnxruntime

    folder = embedding.package_folder()
    return {name: onnxruntime.InferenceSession(str(folder / relative), providers=["CPUExecutionProvider"])
            for name, (relative, _sha) in embedding.FILES.items()}


def test_the_keras_layers_answer_as_the_onnx_files(clips_16k, onnx_sessions):
    arrays = embedding.weights()
    mel, network = embedding.SpeechEmbeddingMel(), embedding.embedding_network(arrays["embedding"])
    mel.load(arrays["melspectrogram"])
    for clip in clips_16k:  # one at a time: the ONNX front end floors at the loudest value of the whole batch
        expected = onnx_sessions["melspectrogram"].run(None, {"input": clip[None]})[0].squeeze() / 10 + 2
        got = mel(clip[None] / 32767.0).numpy()[0]
        assert got.shape == expected.shape == (97, embedding.MEL_BINS)
        np.testing.assert_allclose(got, expected, atol=1e-4)  # measured: < 1e-5
        windows = np.stack([expected[start:start + embedding.WINDOW_FRAMES] for start in
                            range(0, len(expected) - embedding.WINDOW_FRAMES + 1, embedding.WINDOW_STEP)])
        windows = windows[..., None].astype(np.float32)
        reference = onnx_sessions["embedding"].run(None, {"input_1": windows})[0].reshape(len(windows), -1)
        assert reference.shape == (3, embedding.EMBEDDING_DIM) and np.abs(reference).max() > 10
        np.testing.assert_allclose(network(windows).numpy(), reference, atol=1e-3)  # measured: < 1e-4


def test_a_file_that_differs_from_the_pinned_one_is_refused_before_it_is_read(tmp_path):
    source = embedding.package_folder()
    for relative, _sha in embedding.FILES.values():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, tmp_path / relative)
    assert set(embedding.weights(tmp_path)) == {"melspectrogram", "embedding"}
    changed = tmp_path / embedding.FILES["embedding"][0]
    data = bytearray(changed.read_bytes())
    data[-1] ^= 1
    changed.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"Checksum mismatch for .*embedding_model\.onnx: refusing to read it\. "
                                        r"Received: sha256=[0-9a-f]{64}\. Expected: ba754db3"):
        embedding.weights(tmp_path)
    changed.unlink()
    with pytest.raises(DataError, match=r"weights are missing\. Received: no .*embedding_model\.onnx"):
        embedding.weights(tmp_path)


def test_the_embedding_classifier_saves_and_reloads_with_its_answers(clips_16k, tmp_path):
    import keras

    from apps.speech.models import build_embedding_classifier

    arrays = embedding.weights()
    model = build_embedding_classifier(embedding.embedding_front_end(8000, arrays=arrays["melspectrogram"]),
                                       embedding.embedding_network(arrays["embedding"]), np.full(192, 20.0),
                                       np.full(192, 4.0), num_classes=10, dense_units=8)
    assert not any(weight.trainable for weight in model.get_layer("embeddings").weights)  # only the head trains
    assert model.count_params() - sum(np.prod(w.shape) for w in model.non_trainable_weights) < 2000
    waveforms = clips_16k[:, ::2] / 32767.0  # back to 8 kHz
    expected = model.predict(waveforms, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(waveforms, verbose=0), expected, atol=1e-5)


def test_dense_units_zero_is_a_linear_probe_and_only_the_embedding_model_takes_it():
    from apps.speech.config import digits_default, digits_embedding
    from apps.speech.models import build_embedding_classifier
    from shared.errors import ConfigError

    import dataclasses

    arrays = embedding.weights()
    model = build_embedding_classifier(embedding.embedding_front_end(8000, arrays=arrays["melspectrogram"]),
                                       embedding.embedding_network(arrays["embedding"]), np.zeros(192),
                                       np.ones(192), num_classes=10, dense_units=0, l2=1e-3)
    trainable = [weight.path for weight in model.trainable_weights]
    assert sorted(trainable) == ["probabilities/bias", "probabilities/kernel"]  # softmax regression
    assert model.get_layer("head_normalization").input.shape == (None, 192)
    assert model.get_layer("probabilities").kernel_regularizer is not None
    dataclasses.replace(digits_embedding(), dense_units=0)  # accepted
    with pytest.raises(ConfigError, match=r"Received: dense_units=0"):
        dataclasses.replace(digits_default(), dense_units=0)  # the CNN needs its dense layer
