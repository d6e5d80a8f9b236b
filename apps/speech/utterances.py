"""Synthetic digit strings: FSDD clips of one speaker joined with random short gaps and noise.

Generated deterministically from a seed, from the clips of one split only, so
test utterances never contain a training take.
"""

import dataclasses

import numpy as np

from apps.speech.config import SAMPLE_RATE


@dataclasses.dataclass
class Utterance:
    speaker: str
    digits: str  # e.g. "4071"
    waveform: np.ndarray


def make_utterances(clips, count, config, seed):
    """`count` utterances of `config.min_digits..max_digits` digits, each at most `config.clip_seconds` long."""
    rng = np.random.default_rng(seed)
    by_speaker = {}
    for clip in clips:
        by_speaker.setdefault(clip.speaker, []).append(clip)
    speakers = sorted(by_speaker)
    max_samples = int(round(config.clip_seconds * SAMPLE_RATE))
    low_gap, high_gap = (int(seconds * SAMPLE_RATE) for seconds in config.gap_seconds)
    utterances = []
    for _ in range(count):
        speaker = speakers[rng.integers(len(speakers))]
        pool = by_speaker[speaker]
        num_digits = int(rng.integers(config.min_digits, config.max_digits + 1))
        while True:
            picks = [pool[position] for position in rng.integers(0, len(pool), num_digits)]
            gaps = rng.integers(low_gap, high_gap + 1, num_digits + 1)  # before, between and after the clips
            if sum(len(clip.waveform) for clip in picks) + gaps.sum() <= max_samples or num_digits == 1:
                break
            num_digits -= 1  # too long for the window: one digit fewer
        pieces = []
        for gap, clip in zip(gaps, picks):
            pieces += [np.zeros(gap, np.float32), clip.waveform]
        waveform = np.concatenate(pieces + [np.zeros(gaps[-1], np.float32)])[:max_samples]
        noise = rng.uniform(0, config.utterance_noise) * np.abs(waveform).max()
        waveform = (waveform + noise * rng.standard_normal(len(waveform))).astype(np.float32)
        utterances.append(Utterance(speaker, "".join(str(clip.digit) for clip in picks), waveform))
    return utterances


def label_matrix(utterances, max_digits):
    """CTC targets `int32 [count, max_digits]`: digit d is class d + 1, 0 (the blank) pads."""
    labels = np.zeros((len(utterances), max_digits), np.int32)
    for row, utterance in enumerate(utterances):
        labels[row, : len(utterance.digits)] = [int(digit) + 1 for digit in utterance.digits]
    return labels
