"""Speech data: finding and checking FSDD, splits, the front end, synthetic utterances, TFDS (mocked)."""

import hashlib
import shutil
import wave

import numpy as np
import pytest

from apps.speech import config as speech_config
from apps.speech import fsdd
from shared.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def fsdd_dir(data_root):
    return data_root / "fsdd"


@pytest.fixture(scope="module")
def clips(fsdd_dir):
    return fsdd.load_clips(fsdd_dir)


def small_copy(tmp_path, fsdd_dir, names=("0_george_0.wav", "1_jackson_7.wav", "7_theo_12.wav")):
    """An FSDD-shaped folder with a few real recordings and their SHA256SUMS."""
    folder = tmp_path / "fsdd"
    (folder / "recordings").mkdir(parents=True)
    lines = []
    for name in names:
        shutil.copy(fsdd_dir / "recordings" / name, folder / "recordings" / name)
        digest = hashlib.sha256((folder / "recordings" / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  recordings/{name}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return folder


# === Finding and checking the source ===


def test_resolve_source_accepts_the_folder_or_its_root(data_root, fsdd_dir, monkeypatch):
    assert fsdd.resolve_source(str(data_root)) == fsdd_dir
    assert fsdd.resolve_source(str(fsdd_dir)) == fsdd_dir
    monkeypatch.delenv("DLSUITE_DATA_DIR", raising=False)
    assert fsdd.resolve_source(None) == fsdd.TFDS
    monkeypatch.setenv("DLSUITE_DATA_DIR", str(data_root))
    assert fsdd.resolve_source(None) == fsdd_dir


def test_missing_or_empty_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"Data directory not found. Received: --data-dir .*nowhere"):
        fsdd.resolve_source(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"No fsdd data found\. Received: --data-dir .* \(looked in .*fsdd\)\. "
                                        r"Expected recordings/\*\.wav \(FSDD.*\. Fix: --data-dir"):
        fsdd.resolve_source(str(tmp_path))


def test_check_source_passes_on_a_clean_copy(tmp_path, fsdd_dir):
    fsdd.check_source(small_copy(tmp_path, fsdd_dir))


def test_checksum_mismatch_names_the_file(tmp_path, fsdd_dir):
    folder = small_copy(tmp_path, fsdd_dir)
    path = folder / "recordings" / "1_jackson_7.wav"
    path.write_bytes(path.read_bytes()[:-2] + b"\x01\x02")
    with pytest.raises(DataError, match=r"Checksum mismatch for .*1_jackson_7\.wav\. Received: sha256="):
        fsdd.check_source(folder)


def test_unreadable_wav_names_the_file(tmp_path, fsdd_dir):
    folder = small_copy(tmp_path, fsdd_dir)
    (folder / "SHA256SUMS").unlink()
    (folder / "recordings" / "7_theo_12.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(DataError, match=r"Unreadable WAV file .*7_theo_12\.wav\. Received: .*\. Expected a PCM WAV "
                                        r"file\. Fix: restore it"):
        fsdd.check_source(folder)


def test_wrong_sample_rate_names_the_file(tmp_path, fsdd_dir):
    folder = small_copy(tmp_path, fsdd_dir)
    (folder / "SHA256SUMS").unlink()
    with wave.open(str(folder / "recordings" / "3_lucas_1.wav"), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(np.zeros(1600, np.int16).tobytes())
    with pytest.raises(DataError, match=r"Wrong sample rate in .*3_lucas_1\.wav\. Received: 16000 Hz\. Expected 8000 "
                                        r"Hz .*\. Fix: resample the file"):
        fsdd.check_source(folder)


def test_config_errors_say_what_was_expected():
    with pytest.raises(ConfigError, match=r"Received: noise_snr_db=\(40\.0, 10\.0\)\. Expected two numbers low,high"):
        speech_config.DigitsConfig(noise_snr_db=(40.0, 10.0))
    with pytest.raises(ConfigError, match=r"Received: held_out_speaker='bob'\. Expected one of: george"):
        speech_config.DigitsConfig(held_out_speaker="bob")


# === Splits ===


def test_standard_split_is_fsdd_convention(clips):
    train, validation, test = fsdd.partition_clips(clips, "standard", "theo", 0.1, seed=0)
    assert (len(train), len(validation), len(test)) == (2430, 270, 300)
    assert {clip.index for clip in test} == set(range(5))
    assert all(clip.index >= 5 for clip in train + validation)
    keys = [(clip.digit, clip.speaker, clip.index) for clip in train + validation + test]
    assert len(set(keys)) == 3000


def test_speaker_split_holds_one_speaker_out(clips):
    train, validation, test = fsdd.partition_clips(clips, "speaker", "lucas", 0.1, seed=0)
    assert len(test) == 500 and {clip.speaker for clip in test} == {"lucas"}
    assert "lucas" not in {clip.speaker for clip in train + validation}


# === TFDS spoken_digit (mocked: nothing downloads) ===


def test_tfds_source_reads_spoken_digit(fsdd_dir, monkeypatch):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    names = ["3_george_2.wav", "3_george_20.wav", "5_theo_4.wav", "5_theo_40.wav"]
    audio = []
    for name in names:
        with wave.open(str(fsdd_dir / "recordings" / name)) as reader:
            audio.append(np.frombuffer(reader.readframes(reader.getnframes()), np.int16).astype(np.int64))

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_generator(
            lambda: ({"audio": samples, "label": int(name[0]), "audio/filename": name}
                     for samples, name in zip(audio, names)),
            output_signature={"audio": tf.TensorSpec([None], tf.int64), "label": tf.TensorSpec([], tf.int64),
                              "audio/filename": tf.TensorSpec([], tf.string)},
        )

    monkeypatch.delenv("DLSUITE_DATA_DIR", raising=False)
    source = fsdd.resolve_source(None)
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        loaded = fsdd.load_clips(source)
    local = {clip.path.split("/")[-1]: clip for clip in fsdd.load_clips(fsdd_dir) if clip.path.endswith(tuple(names))}
    assert [(clip.digit, clip.speaker, clip.index) for clip in loaded] == [
        (3, "george", 2), (3, "george", 20), (5, "theo", 4), (5, "theo", 40)]
    for clip in loaded:  # int16 PCM / 32768 is what tf.audio.decode_wav gives for the same file
        np.testing.assert_allclose(clip.waveform, local[f"{clip.digit}_{clip.speaker}_{clip.index}.wav"].waveform)
    train, _validation, test = fsdd.partition_clips(loaded, "standard", "theo", 0.0, seed=0)
    assert [clip.index for clip in test] == [2, 4] and [clip.index for clip in train] == [20, 40]
