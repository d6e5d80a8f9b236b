"""Negatives for the open-set digits task: `unknown` (speech that is not a digit) and `silence` (no speech).

FSDD has only digits, so they are made, deterministically from a seed, per split:

- `unknown`: English words synthesised by `espeak-ng` (a Debian package; pipelines/bootstrap.py installs it)
  with many voices, speeds and pitches, its 22.05 kHz output resampled to 8 kHz with scipy's `resample_poly`;
  the word lists of train, validation and test are disjoint (`WORDS`); plus FSDD digits of the same split
  reversed in time or cut to their first or last 35%;
- `silence`: generated noise (white, pink, brown, mains hum with harmonics) at random levels.

`synthetic_digits` also speaks the ten digits with many espeak-ng voices: extra training speakers for the
digits task (`--set synthetic_digits=N`), closed or open set.

They are cached as `.npz` under `$DLSUITE_CACHE_DIR/speech_negatives/<hash>/` (default `~/.cache/dlsuite`),
keyed by everything that changes them, so a second run reads them back.
"""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from shared.errors import DataError

UNKNOWN, SILENCE = "unknown", "silence"
VERSION = 1
# Disjoint word lists; no digit homophones ("to", "for", "won", "ate", "oh").
WORDS = {
    "train": ("right", "left", "up", "down", "yes", "no", "stop", "go", "house", "bird", "cat", "dog", "happy",
              "marvin", "sheila", "wow", "bed", "follow", "learn", "visual", "forward", "backward", "off",
              "apple", "water", "light", "green", "table", "window", "music", "paper", "river", "money",
              "garden", "morning", "yellow", "purple", "chicken"),
    "validation": ("hello", "world", "open", "close", "coffee", "sugar", "orange", "doctor", "silver", "winter",
                   "pencil", "monkey"),
    "test": ("computer", "banana", "summer", "little", "kitchen", "planet", "rabbit", "letter", "people", "station",
             "basket", "candle", "jacket"),
}
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-us+f3", "en+f2", "en+f4", "en+m3", "en-gb+m5", "en-us+klatt",
          "en+croak", "en-gb-x-rp", "en+whisper")
NOISES = ("white", "pink", "brown", "hum")
# Synthesised digits (`synthetic_digits`): accents x voice variants of espeak-ng.
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "klatt4", "croak", "grandpa", "grandma", "adam", "Alicia", "Andy", "aunty", "benjamin", "david",
            "edward", "linda", "max", "michel", "paul", "quincy", "robert", "steph", "travis", "victor", "zac")
ESPEAK_RATE = 22050


def cache_root():
    return Path(os.environ.get("DLSUITE_CACHE_DIR", Path.home() / ".cache" / "dlsuite")) / "speech_negatives"


def check_espeak(received="open_set=True"):
    """DataError unless `espeak-ng` is on the PATH (the open set and `synthetic_digits` need it); `received` names
    the config values that need it."""
    if shutil.which("espeak-ng") is None:
        raise DataError("The open-set digits task and synthetic_digits synthesise speech with espeak-ng, which is "
                        f"not installed. Received: {received}. Expected espeak-ng on the PATH. Fix: apt-get install "
                        "espeak-ng (`dlsuite setup` does), or --set open_set=false --set synthetic_digits=0.")


def synthesize(word, voice, speed, pitch):
    """`word` spoken by espeak-ng -> float32 waveform at 8 kHz."""
    import scipy.signal

    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         check=True, capture_output=True).stdout
    # Streamed to stdout, the WAV header has no real length: read the 44-byte header's rate, then 16-bit samples.
    rate, samples = int.from_bytes(wav[24:28], "little"), np.frombuffer(wav[44:len(wav) - len(wav) % 2], "<i2")
    if rate != ESPEAK_RATE:
        raise DataError(f"Unexpected espeak-ng output rate. Received: {rate} Hz. Expected {ESPEAK_RATE} Hz. "
                        "Fix: install Debian's espeak-ng.")
    return scipy.signal.resample_poly(samples.astype(np.float64) / 32768, 160, 441).astype(np.float32)


def noise(kind, num_samples, rng):
    """One second-ish of `kind` noise (white, pink, brown or 50/60 Hz hum) at a random level."""
    white = rng.standard_normal(num_samples)
    if kind == "white":
        signal = white
    elif kind in ("pink", "brown"):
        spectrum = np.fft.rfft(white)
        frequencies = np.maximum(np.fft.rfftfreq(num_samples), 1.0 / num_samples)
        signal = np.fft.irfft(spectrum / (np.sqrt(frequencies) if kind == "pink" else frequencies), num_samples)
    else:
        time = np.arange(num_samples) / 8000
        base = rng.choice([50.0, 60.0])
        signal = sum(rng.uniform(0.2, 1) / harmonic * np.sin(2 * np.pi * base * harmonic * time + rng.uniform(0, 6))
                     for harmonic in range(1, 6)) + 0.05 * white
    signal = signal / (np.abs(signal).max() + 1e-9)
    return (signal * 10 ** rng.uniform(-3, -0.5)).astype(np.float32)


def distorted_digit(waveform, rng):
    """A digit that is no longer one: reversed in time, or only its first or last 35%."""
    choice = rng.integers(3)
    if choice == 0:
        return waveform[::-1].copy()
    cut = max(1, int(len(waveform) * 0.35))
    return (waveform[:cut] if choice == 1 else waveform[-cut:]).copy()


def make(split, count, seed, digit_waveforms):
    """`count` negatives of `split`: `(waveforms, names)` with names `unknown` or `silence` (a third silence,
    of the unknowns two thirds synthesised words and one third distorted digits of the same split)."""
    rng = np.random.default_rng([seed, ("train", "validation", "test").index(split)])
    waveforms, names = [], []
    for index in range(count):
        kind = index % 3
        if kind == 0:
            waveforms.append(noise(NOISES[rng.integers(len(NOISES))], int(rng.integers(4000, 9000)), rng))
            names.append(SILENCE)
            continue
        if kind == 1 and digit_waveforms:
            waveforms.append(distorted_digit(digit_waveforms[rng.integers(len(digit_waveforms))], rng))
        else:
            word = WORDS[split][rng.integers(len(WORDS[split]))]
            waveforms.append(synthesize(word, VOICES[rng.integers(len(VOICES))], int(rng.integers(110, 240)),
                                        int(rng.integers(20, 80))))
        names.append(UNKNOWN)
    return waveforms, names


def cached(split, count, seed, digit_waveforms):
    """`make(...)`, read from or written to the cache (keyed by the arguments and the digit clips)."""
    return _cached([VERSION, split, count, seed, WORDS[split], VOICES], digit_waveforms,
                   lambda: make(split, count, seed, digit_waveforms), f"{split}.npz")


def synthetic_digits(count, seed):
    """`count` digits "zero".."nine" spoken by espeak-ng, as extra training speakers: `(waveforms, digits)`, each
    with an accent of `ACCENTS`, a voice variant of `VARIANTS`, a speed of 100-220 words/min and a pitch of 10-90,
    all drawn from `seed` (cached as `make` is)."""

    def make_digits():
        rng = np.random.default_rng([seed, 3])
        digits = [index % 10 for index in range(count)]
        waveforms = [synthesize(DIGIT_WORDS[digit], f"{ACCENTS[rng.integers(len(ACCENTS))]}+"
                                f"{VARIANTS[rng.integers(len(VARIANTS))]}", int(rng.integers(100, 220)),
                                int(rng.integers(10, 90))) for digit in digits]
        return waveforms, digits

    waveforms, digits = _cached([VERSION, "digits", count, seed, ACCENTS, VARIANTS], [], make_digits, "digits.npz")
    return waveforms, [int(digit) for digit in digits]


def _cached(key, digit_waveforms, make_clips, file_name):
    """`make_clips()` -> `(waveforms, names)`, read from or written to the cache under a hash of `key` and the
    digit clips it depends on."""
    digest = hashlib.sha256()
    digest.update(json.dumps(key).encode())
    for waveform in digit_waveforms:
        digest.update(np.asarray(waveform, np.float32).tobytes())
    path = cache_root() / digest.hexdigest()[:16] / file_name
    if path.is_file():
        stored = np.load(path)
        lengths, names = stored["lengths"], list(stored["names"])
        return np.split(stored["samples"], np.cumsum(lengths)[:-1]), names
    check_espeak()
    waveforms, names = make_clips()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.npz")
    np.savez(temporary, samples=np.concatenate(waveforms), lengths=np.array([len(w) for w in waveforms]),
             names=np.array(names))
    temporary.replace(path)
    return waveforms, names
