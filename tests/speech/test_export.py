"""Serving: the Keras model logged to MLflow and the SavedModel answer the same on raw waveforms; both
signatures of the reloaded SavedModel agree for WAV bytes, decoded waveforms and clips padded with
silence; `evaluate` works with the reloaded SavedModel (what `dlsuite evaluate --run-id` does)."""

import mlflow
import numpy as np
import pytest

from apps.speech import config as speech_config
from apps.speech.tasks.digit_strings import DigitStringsTask
from apps.speech.tasks.digits import DigitsTask
from pipelines.evaluate import evaluate
from pipelines.train import train
from shared import classifier, export

NAMES = ["0_george_0.wav", "4_yweweler_3.wav", "9_nicolas_1.wav", "6_theo_2.wav"]


@pytest.fixture
def recordings(data_root):
    return data_root / "fsdd" / "recordings"


def decoded(recordings, names):
    import tensorflow as tf

    return [tf.audio.decode_wav((recordings / name).read_bytes()).audio[:, 0].numpy() for name in names]


def padded(waveforms, before=0, after=0):
    longest = max(len(waveform) for waveform in waveforms) + before + after
    batch = np.zeros((len(waveforms), longest), np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, before:before + len(waveform)] = waveform
    return batch


def check_signatures(export_dir, output, recordings):
    """WAV bytes == decoded waveform == the same padded with silence, through the reloaded SavedModel."""
    wav_bytes = np.array([(recordings / name).read_bytes() for name in NAMES], dtype=object)
    from_bytes = export.load_serving(export_dir)["serving_wav"](wav_bytes=wav_bytes)
    serve = export.load_serving(export_dir)
    clips = decoded(recordings, NAMES)
    from_waveforms = serve(waveforms=padded(clips))
    from_silence = serve(waveforms=padded(clips, before=2000, after=6000))
    one_by_one = [serve(waveforms=padded([clip], before=300)) for clip in clips]
    for outputs in (from_waveforms, from_silence):
        for key, value in from_bytes.items():
            if value.dtype.kind in "SO":
                assert list(value) == list(outputs[key])
            else:
                np.testing.assert_allclose(outputs[key], value, atol=1e-5)
    assert [single[output][0] for single in one_by_one] == list(from_bytes[output])
    return from_bytes


def test_digits_export_signatures_and_evaluate_from_saved_model(tracking_uri, data_root, recordings, tmp_path):
    summary = train("speech", task="digits", preset="smoke", data_dir=str(data_root), tracking_uri=tracking_uri,
                    export_root=str(tmp_path / "exports"))
    client = mlflow.tracking.MlflowClient(tracking_uri)
    artifacts = {artifact.path for artifact in client.list_artifacts(summary["run_id"])}
    assert {"confusion_matrix.png", "example_spectrograms.png", "per_speaker_accuracy.json",
            "per_class_metrics.json"} <= artifacts
    history = client.get_metric_history(summary["run_id"], "val_accuracy")
    assert len(history) == summary["config"]["epochs"]  # one validation per epoch of the smoke preset

    outputs = check_signatures(summary["export_dir"], "class_names", recordings)
    assert set(outputs) == set(classifier.OUTPUTS) and outputs["probabilities"].shape == (4, 10)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert list(outputs["class_ids"]) == list(outputs["probabilities"].argmax(axis=1))
    assert [name.decode() for name in outputs["class_names"]] == [str(digit) for digit in outputs["class_ids"]]

    # The Keras model logged to MLflow is the served model: raw waveforms in, the SavedModel's probabilities out.
    keras_model = mlflow.keras.load_model(client.get_run(summary["run_id"]).data.tags["dlsuite.keras_model_uri"],
                                          custom_objects=DigitsTask().custom_objects())
    batch = padded(decoded(recordings, NAMES), after=500)
    np.testing.assert_allclose(keras_model.predict(batch, verbose=0),
                               export.load_serving(summary["export_dir"])(waveforms=batch)["probabilities"], atol=1e-5)

    # `dlsuite evaluate --run-id`: the reloaded SavedModel scores exactly what the in-memory endpoint did.
    metrics = evaluate(summary["run_id"], tracking_uri=tracking_uri)["metrics"]
    assert metrics["test_accuracy"] == pytest.approx(summary["metrics"]["test_accuracy"])
    assert metrics["test_errors"] == summary["metrics"]["test_errors"]
    assert client.get_run(summary["run_id"]).data.metrics["evaluate_test_accuracy"] == metrics["test_accuracy"]


def test_digit_strings_export_signatures_and_evaluate(data_root, recordings, tmp_path):
    import dataclasses

    config = dataclasses.replace(speech_config.strings_smoke(), num_train_utterances=8, num_validation_utterances=4,
                                 num_test_utterances=6)
    task = DigitStringsTask()
    source = task.check_inputs(config, str(data_root))
    data = task.build_data(config, source)
    model = task.build_model(config, data)  # untrained: the check is that every path gives the same answer
    endpoints = task.endpoints(model, config, data.info)
    export_dir = export.write_saved_model(model, endpoints, tmp_path / "saved")

    outputs = check_signatures(export_dir, "digits", recordings)
    assert set(outputs) == {"digits", "digits_greedy"} and outputs["digits"].dtype.kind in "SO"
    in_memory = export.serve_in_memory(endpoints)(waveforms=padded(decoded(recordings, NAMES)))
    assert list(in_memory["digits"]) == list(outputs["digits"])

    reloaded = task.evaluate(export.load_serving(export_dir), data, config)
    direct = task.evaluate(export.serve_in_memory(endpoints), data, config)
    assert reloaded.metrics == direct.metrics
    assert set(reloaded.metrics) == {"test_digit_error_rate", "test_string_accuracy", "test_digit_error_rate_greedy",
                                     "test_string_accuracy_greedy"}
    assert {"test_examples.json", "digit_error_rate_by_length.json"} == set(reloaded.tables)


def test_wav_with_the_wrong_sample_rate_is_refused(recordings):
    import io
    import wave

    import tensorflow as tf

    from apps.speech.features import decode_wav_bytes
    from pipelines.rest import model_refusal

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(np.zeros(800, np.int16).tobytes())
    good = (recordings / NAMES[0]).read_bytes()
    assert decode_wav_bytes(tf.constant([good])).shape[0] == 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="Wrong sample rate in WAV bytes") as refused:
        tf.function(decode_wav_bytes)(tf.constant([good, buffer.getvalue()]))  # a graph, as in serving
    # What `dlsuite serve` answers: the whole sentence, the received rate included (it was cut before it)
    assert str(model_refusal(refused.value.message)) == (
        "The model refused the request: Wrong sample rate in WAV bytes. Received: 16000 Hz. Expected 8000 Hz mono. "
        "Fix: resample the audio to 8000 Hz.")
