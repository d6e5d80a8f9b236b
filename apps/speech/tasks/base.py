"""What both speech tasks share: the FSDD source and its checks, splits, and the two serving signatures.

Each task (`tasks/digits.py`, `tasks/digit_strings.py`) builds one Keras model that takes raw waveforms
(`apps/speech/models.py`: the front end is its first layer) and serves `serving_default` on
waveforms `float32 [batch, samples]` at 8 kHz, of any length (zero padding is ignored by the
front end), `serving_wav` on WAV file bytes `string [batch]` of any rate from 4 to 192 kHz, mono or
stereo (resampled to 8 kHz in the graph: `apps/speech/resample.py`), and `serving_any_rate` on waveforms
with their `sample_rate` `int32 [batch]`.
"""

import numpy as np
import tensorflow as tf

from apps.speech import data as speech_data
from apps.speech import fsdd
from apps.speech.features import decode_wav_bytes, resample_waveforms
from shared.app import DatasetRecord, DataSource, Endpoint, Task


def load_and_split(config, source):
    """Decode every clip of the source, then partition them as the config says (`fsdd.partition_clips`):
    (train, validation, test) clips and the source URI."""
    clips = fsdd.load_clips(source.path or fsdd.TFDS)
    train, validation, test = fsdd.partition_clips(clips, config.split, config.held_out_speaker,
                                                   config.validation_fraction, config.seed)
    return train, validation, test, source.uri


def subsample(clips, limit, seed):
    """At most `limit` clips, picked at random (all digits keep a share), in their original order."""
    if not limit or limit >= len(clips):
        return clips
    keep = np.sort(np.random.default_rng(seed).permutation(len(clips))[:limit])
    return [clips[position] for position in keep]


def records_of(name, source, splits):
    return [DatasetRecord(name, source, split, len(clips), fsdd.fingerprint(clips)) for split, clips in splits]


def padded_waveforms(waveforms):
    """What `evaluate` reads: the test waveforms zero-padded to one array (sliced by `Serving.batched`)
    and their lengths."""
    return {"waveforms": speech_data.pad_batch(waveforms), "lengths": np.array([len(w) for w in waveforms])}


class SpeechTask(Task):
    """The data source, its checks and the serving signatures; subclasses define `serve_waveforms`."""

    app = "speech"

    def check_inputs(self, config, data_dir):
        source = fsdd.resolve_source(data_dir)
        fsdd.check_source(source)
        if source != fsdd.TFDS and config.split == "speaker":
            fsdd.check_held_out_speaker(source, config.held_out_speaker)
        return DataSource("tfds", "spoken_digit") if source == fsdd.TFDS else DataSource.files(source)

    def serve_waveforms(self, model, config, info):
        """`fn(waveforms) -> dict of tensors`, the body of both signatures."""
        raise NotImplementedError

    def endpoints(self, model, config, info):
        serve = self.serve_waveforms(model, config, info)

        def serve_wav(wav_bytes):
            return serve(decode_wav_bytes(wav_bytes))

        def serve_any_rate(waveforms, sample_rate):
            return serve(resample_waveforms(waveforms, sample_rate))

        return {
            "serving_default": Endpoint(serve, [tf.TensorSpec([None, None], tf.float32, name="waveforms")]),
            "serving_wav": Endpoint(serve_wav, [tf.TensorSpec([None], tf.string, name="wav_bytes")]),
            "serving_any_rate": Endpoint(serve_any_rate, [tf.TensorSpec([None, None], tf.float32, name="waveforms"),
                                                          tf.TensorSpec([None], tf.int32, name="sample_rate")]),
        }

    def example_inputs(self, data):
        # Clips of different lengths, zero-padded together: checks the padding invariance too.
        return {"waveforms": data.test["waveforms"][:16]}

    def signature_examples(self, data):
        """Every signature: padded waveforms, the same clips as WAV files (16-bit PCM at 8 kHz), and with their rate."""
        wav_bytes = [tf.audio.encode_wav(waveform[:length, np.newaxis], fsdd.SAMPLE_RATE).numpy()
                     for waveform, length in zip(data.test["waveforms"][:4], data.test["lengths"][:4])]
        waveforms = data.test["waveforms"][:4]
        return {**super().signature_examples(data), "serving_wav": {"wav_bytes": np.array(wav_bytes, dtype=object)},
                "serving_any_rate": {"waveforms": waveforms,
                                     "sample_rate": np.full(len(waveforms), fsdd.SAMPLE_RATE, np.int32)}}
