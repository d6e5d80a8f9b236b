"""Benchmark: how far the pretrained speech embedding alone carries new voices (a linear probe, in seconds).

Every FSDD clip goes once through the `embedding` model's own front (apps/speech/embedding.py: trimmed, centered
in `--clip-seconds`, resampled to 16 kHz, log-mel, windows of 0.775 s every 80 ms, the frozen embedding), each
clip's windows are pooled (mean and maximum, as the model's head reads them), and scikit-learn's logistic
regression on standardized features is trained on five speakers and tested on the sixth, for each speaker and
each `--C`. No training of the network: it screens the clip length and the head's regularization in a minute,
where a leave-one-speaker-out run of `dlsuite train` takes several. Prints accuracy per held-out speaker, the
mean and the worst, and the command.

    .venv/bin/python benchmarks/speech_embedding_probe.py [--clip-seconds 1.0 1.5] [--C 0.03 0.1 1]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pooled_embeddings(waveforms, clip_seconds, batch_size=64):
    """`[clips, 192]`: what the `embedding` model's head reads (its "pool" layer: the windows' mean and maximum)."""
    from apps.speech import embedding
    from apps.speech.config import SAMPLE_RATE
    from apps.speech.data import pad_batch
    from apps.speech.models import embedding_pool

    arrays = embedding.weights()
    pooled = embedding_pool(
        embedding.embedding_front_end(int(round(clip_seconds * SAMPLE_RATE)), arrays=arrays["melspectrogram"]),
        embedding.embedding_network(arrays["embedding"]))
    return pooled.predict(pad_batch(waveforms), batch_size=batch_size, verbose=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-seconds", type=float, nargs="+", default=[1.0, 1.5])
    parser.add_argument("--C", type=float, nargs="+", default=[0.03, 0.1, 1.0], help="inverse L2 strength")
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/fsdd")
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from apps.speech import fsdd

    started = time.perf_counter()
    source = fsdd.resolve_source(args.data_dir)
    fsdd.check_source(source)
    clips = fsdd.load_clips(source)
    waveforms = [clip.waveform for clip in clips]
    digits = np.array([clip.digit for clip in clips])
    speakers = np.array([clip.speaker for clip in clips])
    results = []
    for clip_seconds in args.clip_seconds:
        features = pooled_embeddings(waveforms, clip_seconds)
        for inverse_strength in args.C:
            accuracy = {}
            for held_out in sorted(set(speakers)):
                train, test = speakers != held_out, speakers == held_out
                probe = make_pipeline(StandardScaler(), LogisticRegression(C=inverse_strength, max_iter=3000))
                probe.fit(features[train], digits[train])
                accuracy[held_out] = round(float((probe.predict(features[test]) == digits[test]).mean()), 4)
            worst = min(accuracy, key=accuracy.get)
            results.append({"clip_seconds": clip_seconds, "C": inverse_strength, "accuracy": accuracy,
                            "mean": round(float(np.mean(list(accuracy.values()))), 4),
                            "worst": [worst, accuracy[worst]]})
            print(json.dumps(results[-1]), flush=True)
    print(f"wall {time.perf_counter() - started:.0f} s on {os.cpu_count()} cores")
    print("command: .venv/bin/python benchmarks/speech_embedding_probe.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
