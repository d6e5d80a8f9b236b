"""Serving: the Keras model logged to MLflow and the SavedModel answer the same on raw waveforms; both
signatures of the reloaded SavedModel agree for WAV bytes, decoded waveforms and clips padded with
silence; `evaluate` works with the reloaded SavedModel (what `dlsuite evaluate --run-id` does)."""

import mlflow
import numpy as np
import pytest

from apps.speech import config as speech_config
from apps.speech.tasks.digit_strings import DigitStringsTask
from pipelines.evaluate import evaluate
from pipelines.train import train
from shared import classifier, export, mlflow_model

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
    check_serve_other_rates(summary["export_dir"], recordings, check_other_rates(summary["export_dir"], recordings))
    assert set(outputs) == set(classifier.OUTPUTS) and outputs["probabilities"].shape == (4, 10)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert list(outputs["class_ids"]) == list(outputs["probabilities"].argmax(axis=1))
    assert [name.decode() for name in outputs["class_names"]] == [str(digit) for digit in outputs["class_ids"]]

    # The Keras model logged to MLflow is the served model: raw waveforms in, the SavedModel's probabilities out.
    model_uri = client.get_run(summary["run_id"]).data.tags["dlsuite.keras_model_uri"]
    keras_model = mlflow_model.load_logged_keras_model(model_uri)
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


def other_rate_wavs(recordings, names, rates):
    """The FSDD clips `names` upsampled by scipy to each of `rates`, as 16-bit WAV bytes: `{rate: [bytes]}`."""
    from tests.speech.test_resample import at_rate, wav

    clips = decoded(recordings, names)
    return {rate: [wav(at_rate(clip, rate), rate) for clip in clips] for rate in rates}


def check_other_rates(export_dir, recordings):
    """16 and 44.1 kHz WAV files of FSDD clips get the class of the 8 kHz originals, in a fresh reload of the export
    (the same with `serving_any_rate` on the float waveforms); the classes are returned for the serve check."""
    serve = export.load_serving(export_dir)
    original = serve["serving_wav"](wav_bytes=np.array([(recordings / name).read_bytes() for name in NAMES],
                                                       dtype=object))["class_ids"]
    for rate, wavs in other_rate_wavs(recordings, NAMES, (16000, 44100)).items():
        assert list(serve["serving_wav"](wav_bytes=np.array(wavs, dtype=object))["class_ids"]) == list(original)
    from tests.speech.test_resample import at_rate

    high = [at_rate(clip, 44100).astype(np.float32) for clip in decoded(recordings, NAMES)]
    any_rate = serve["serving_any_rate"](waveforms=padded(high), sample_rate=np.full(len(NAMES), 44100, np.int32))
    assert list(any_rate["class_ids"]) == list(original)
    return [int(value) for value in original]


def check_serve_other_rates(export_dir, recordings, expected_class_ids):
    """`dlsuite serve` on the export: 16 and 44.1 kHz WAV bytes answer the 8 kHz classes; 2 kHz is a clear 400."""
    import base64
    from pathlib import Path

    from tests.conftest import free_port, post_json, start_cli_server, stop_server, wait_for_http
    from tests.speech.test_resample import wav

    folder = Path(export_dir).parent
    port = free_port()
    process = start_cli_server("serve", "--model-dir", folder, "--port", port)
    base = f"http://127.0.0.1:{port}/v1/models/{folder.name}"
    try:
        wait_for_http(base, process)
        for rate, wavs in other_rate_wavs(recordings, NAMES, (16000, 44100)).items():
            body = {"signature_name": "serving_wav",
                    "inputs": {"wav_bytes": [{"b64": base64.b64encode(data).decode()} for data in wavs]}}
            status, answer = post_json(f"{base}:predict", body)
            assert status == 200, answer
            assert answer["outputs"]["class_ids"] == expected_class_ids
        low = wav(decoded(recordings, NAMES[:1])[0][:400], 2000)
        status, answer = post_json(f"{base}:predict", {"signature_name": "serving_wav", "inputs": {
            "wav_bytes": [{"b64": base64.b64encode(low).decode()}]}})
        assert status == 400 and "Unsupported sample rate" in answer["error"], answer
        assert "2000" in answer["error"] and "Expected 4000 to 192000 Hz" in answer["error"], answer
    finally:
        stop_server(process)


def test_wav_at_another_rate_is_accepted(recordings):
    import tensorflow as tf

    from apps.speech.features import decode_wav_bytes

    good = (recordings / NAMES[0]).read_bytes()
    high = other_rate_wavs(recordings, NAMES[:1], (16000,))[16000][0]
    waveforms = decode_wav_bytes(tf.constant([good, high])).numpy()
    assert waveforms.shape[0] == 2
    length = len(decoded(recordings, NAMES[:1])[0])
    np.testing.assert_allclose(waveforms[1, :length], waveforms[0, :length], atol=0.02)
