"""The Free Spoken Digit Dataset: find it, validate it cheaply, decode it.

Sources, in order (`shared.datasets.find_dataset`): `--data-dir` (the fsdd folder itself or a root
holding `fsdd/`), `$DLSUITE_DATA_DIR/fsdd`, else TFDS `spoken_digit` (downloads once). An explicit
`--data-dir` never falls back to a download.

A clip is `Clip(digit, speaker, index, waveform)`; `waveform` is float32 in
[-1, 1] at 8 kHz, decoded with `tf.audio.decode_wav` (local files) or read from
TFDS (int16 PCM values).
"""

import dataclasses
import hashlib
import re
import wave
from pathlib import Path

import numpy as np

from apps.speech.config import SAMPLE_RATE
from shared import checksums
from shared.datasets import find_dataset
from shared.errors import DataError

TFDS = "tfds"
FILE_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
TEST_TAKES = range(5)  # FSDD's own rule: takes 0-4 of every digit and speaker are the test set


@dataclasses.dataclass
class Clip:
    digit: int
    speaker: str
    index: int
    waveform: np.ndarray = None
    path: str = ""


# === Finding the data ===


def resolve_source(data_dir=None):
    """The fsdd folder (holding `recordings/`) `shared.datasets.find_dataset` finds (`--data-dir` or its `fsdd/`,
    else `$DLSUITE_DATA_DIR/fsdd`), or "tfds" when none is found and no `--data-dir` was named."""
    return find_dataset("fsdd", data_dir, looks_right=lambda folder: (folder / "recordings").is_dir(),
                        expected="recordings/*.wav (FSDD, files named digit_speaker_index.wav)", fallback=TFDS)


def check_source(source):
    """Checksums (when SHA256SUMS is present), file names and WAV headers; raises DataError naming the file."""
    if source == TFDS:
        return
    folder = Path(source)
    sums = folder / "SHA256SUMS"
    if sums.is_file():
        checksums.verify(sums)
    paths = list_wavs(folder)
    for path in paths:
        check_wav_header(path)


def list_wavs(folder):
    paths = sorted((Path(folder) / "recordings").glob("*.wav"))
    if not paths:
        raise DataError(
            f"No WAV files in the FSDD folder. Received: {Path(folder) / 'recordings'} holds no *.wav file. Expected "
            "the 3,000 FSDD recordings named digit_speaker_index.wav. Fix: restore recordings/ from the dataset's "
            "source, or --data-dir <another folder>."
        )
    for path in paths:
        if not FILE_NAME.match(path.name):
            raise DataError(
                f"Unexpected file name {path}. Received: {path.name!r}. Expected the FSDD pattern "
                "digit_speaker_index.wav, e.g. 7_jackson_32.wav. Fix: remove or rename the file."
            )
    return paths


def check_wav_header(path):
    """Raise DataError unless `path` is a readable 16-bit mono WAV at 8 kHz."""
    try:
        with wave.open(str(path), "rb") as reader:
            rate, channels, width, frames = (reader.getframerate(), reader.getnchannels(), reader.getsampwidth(),
                                             reader.getnframes())
    except (wave.Error, EOFError, OSError) as error:
        raise DataError(
            f"Unreadable WAV file {path}. Received: {error}. Expected a PCM WAV file. Fix: restore it from the "
            "dataset's source."
        ) from None
    if rate != SAMPLE_RATE:
        raise DataError(
            f"Wrong sample rate in {path}. Received: {rate} Hz. Expected {SAMPLE_RATE} Hz (FSDD is recorded at "
            "8 kHz). Fix: resample the file or restore the original."
        )
    if channels != 1 or width != 2 or frames == 0:
        raise DataError(
            f"Unexpected WAV format in {path}. Received: {channels} channel(s), {8 * width}-bit, {frames} frames. "
            "Expected mono 16-bit PCM with at least one frame. Fix: convert the file (e.g. sox in.wav -c 1 -b 16 "
            "-r 8000 out.wav) or restore the original."
        )


def source_uri(source):
    return "tfds://spoken_digit" if source == TFDS else str(Path(source).resolve())


# === Decoding ===


def load_clips(source):
    """Every clip of the source, decoded, sorted by (speaker, digit, index)."""
    clips = _load_tfds() if source == TFDS else _load_folder(source)
    return sorted(clips, key=lambda clip: (clip.speaker, clip.digit, clip.index))


def _load_folder(folder):
    import tensorflow as tf

    paths = list_wavs(folder)

    def decode(path):
        return tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1).audio[:, 0]

    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    waveforms = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator()
    return [_clip(path.name, waveform, str(path)) for path, waveform in zip(paths, waveforms)]


def _load_tfds():
    import tensorflow_datasets as tfds

    dataset = tfds.load("spoken_digit", split="train")
    clips = []
    for example in tfds.as_numpy(dataset):
        name = example["audio/filename"].decode()
        waveform = np.asarray(example["audio"], dtype=np.float32) / 32768.0
        clips.append(_clip(name, waveform, f"tfds://spoken_digit/{name}"))
    return clips


def _clip(name, waveform, path):
    match = FILE_NAME.match(Path(name).name)
    if match is None:
        raise DataError(f"Unexpected file name {path}. Received: {Path(name).name!r}. Expected the FSDD pattern "
                        "digit_speaker_index.wav. Fix: remove or rename the file.")
    digit, speaker, index = match.groups()
    return Clip(int(digit), speaker, int(index), np.asarray(waveform, dtype=np.float32), path)


def fingerprint(clips):
    digest = hashlib.sha256()
    for clip in clips:
        digest.update(f"{clip.digit}_{clip.speaker}_{clip.index}".encode())
        digest.update(clip.waveform.tobytes())
    return digest.hexdigest()


# === Splits ===


def check_held_out_speaker(folder, held_out_speaker):
    """The speaker split needs clips of its speaker in the folder: checked before a run opens."""
    speakers = sorted({FILE_NAME.match(path.name).group(2) for path in list_wavs(Path(folder))})
    if held_out_speaker not in speakers:
        raise DataError(
            f"No clips of the held-out speaker in {folder}. Received: held_out_speaker={held_out_speaker!r}. "
            f"Expected one of the folder's speakers: {', '.join(speakers)}. "
            f"Fix: --set held_out_speaker={speakers[0] if speakers else '<speaker>'}, or --set split=standard."
        )


def partition_clips(clips, split, held_out_speaker, validation_fraction, seed):
    """(train, validation, test) lists of clips.

    "standard": takes 0-4 are the test set (FSDD's convention), the rest train;
    "speaker": every clip of `held_out_speaker` is the test set. In both, a
    random `validation_fraction` of the training clips is held out for validation.
    """
    if split == "standard":
        test = [clip for clip in clips if clip.index in TEST_TAKES]
        rest = [clip for clip in clips if clip.index not in TEST_TAKES]
    else:
        test = [clip for clip in clips if clip.speaker == held_out_speaker]
        rest = [clip for clip in clips if clip.speaker != held_out_speaker]
        if not test:
            speakers = sorted({clip.speaker for clip in clips})
            raise DataError(
                f"No clips of the held-out speaker. Received: held_out_speaker={held_out_speaker!r}. "
                f"Expected one of the source's speakers: {', '.join(speakers)}. "
                f"Fix: --set held_out_speaker={speakers[0] if speakers else '<speaker>'}, or --set split=standard."
            )
    order = np.random.default_rng(seed).permutation(len(rest))
    num_validation = int(round(len(rest) * validation_fraction))
    validation = [rest[position] for position in sorted(order[:num_validation])]
    train = [rest[position] for position in sorted(order[num_validation:])]
    return train, validation, test
