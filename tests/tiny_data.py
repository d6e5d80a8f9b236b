"""Tiny datasets written by the tests in each dataset's official layout (seconds to write and to train on).

Vision: the four Fashion-MNIST/MNIST IDX files (gzip). Speech: FSDD's `recordings/digit_speaker_take.wav`
(8 kHz, 16-bit mono PCM) with SHA256SUMS. The data carries its labels (a band per class, a pitch per
digit), so a model can learn from it; the readers here are the tests' own, not the apps'.
"""

import gzip
import hashlib
import wave

import numpy as np

IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
SAMPLE_RATE = 8000


# === IDX ===


def write_idx(path, array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def read_idx(path):
    """The array of an IDX file of uint8 (plain or gzip): the test's own reader, not `apps.vision.idx`."""
    raw = path.read_bytes()
    raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * axis: 8 + 4 * axis], "big") for axis in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def make_idx_folder(folder, sizes=(("train", 64), ("test", 32))):
    """Class k is a bright horizontal band at rows 2k+4..2k+7 over noise, so the images carry their label."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in sizes:
        labels = np.arange(count) % 10
        images = rng.integers(0, 64, size=(count, 28, 28))
        for image, label in zip(images, labels):
            image[2 * label + 4: 2 * label + 8] = 255
        images_name, labels_name = IDX_FILES[split]
        write_idx(folder / images_name, images)
        write_idx(folder / labels_name, labels)
    return folder


# === WAV ===


def write_wav(path, waveform, sample_rate=SAMPLE_RATE):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes((np.clip(waveform, -1, 1) * 32767).astype("<i2").tobytes())


def read_wav(path):
    """float32 samples in [-1, 1] of a 16-bit mono WAV file, and its sample rate."""
    with wave.open(str(path), "rb") as reader:
        frames = reader.readframes(reader.getnframes())
        return np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0, reader.getframerate()


def write_sums(folder):
    lines = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  recordings/{path.name}"
             for path in sorted((folder / "recordings").glob("*.wav"))]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def make_fsdd_folder(folder, speakers=("george", "theo"), takes=(0, 5, 6)):
    """digit_speaker_take.wav: a 0.4 s tone whose pitch says the digit; takes 0-4 are FSDD's test set."""
    (folder / "recordings").mkdir(parents=True)
    rng = np.random.default_rng(0)
    time = np.arange(int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    for digit in range(10):
        for speaker in speakers:
            for take in takes:
                tone = 0.5 * np.sin(2 * np.pi * (300 + 150 * digit) * time) + 0.01 * rng.normal(size=time.shape)
                write_wav(folder / "recordings" / f"{digit}_{speaker}_{take}.wav", tone)
    write_sums(folder)
    return folder
