"""Benchmark: English-to-Spanish translation on Tatoeba's spa-eng pairs, BLEU and chrF on the test split.

Trains the `translation` preset(s) through `pipelines.train.train` (the same code as `dlsuite train`) for
their wall-time budget (`max_train_seconds`, 20 minutes in the default preset), exports the SavedModel, and
prints per run: corpus BLEU and chrF (sacrebleu; every Spanish translation of a test sentence a reference)
of the served graph on the test split, the same two scores after lowercasing and stripping punctuation from
both sides (how the keras-io recipe's output looks), epochs, training and wall time, and a few translations.
For scale, the README sets these beside a scratch re-implementation of the keras-io English-to-Spanish
recipe trained for the same wall time on the same split and scored the same way. The machine may be shared:
wall times include other people's load.

    .venv/bin/python benchmarks/nlp_translation.py [--presets default beam] [--seeds 42] [--set key=value ...]
        [--data-dir DIR] [--tracking-uri URI]
"""

import argparse
import json
import os
import re
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PUNCTUATION = re.escape(string.punctuation.replace("[", "").replace("]", "") + "¿¡")


def normalized(text):
    return re.sub(f"[{PUNCTUATION}]", "", text.lower())


def train_run(preset, seed, args):
    import mlflow
    import numpy as np

    from apps.nlp import corpora
    from apps.nlp.tasks.translation import corpus_scores, split_pairs
    from pipelines.train import train
    from shared import config as config_lib
    from shared.export import load_serving

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as exports:
        summary = train("nlp", task="translation", preset=preset, overrides=args.overrides, seed=seed,
                        data_dir=args.data_dir, tracking_uri=args.tracking_uri, export_root=exports)
        wall = time.perf_counter() - started
        from apps.nlp.config import TranslationConfig

        config = config_lib.from_dict(TranslationConfig, summary["config"])
        sources, targets, _ = corpora.read_pairs(args.data_dir, config.pairs_file)
        references = {}
        for english, spanish in zip(*split_pairs(sources, targets, config)["test"]):
            references.setdefault(english, []).append(spanish)
        english = list(references)[:config.max_bleu_examples]
        served = load_serving(summary["export_dir"]).batched(256, text=np.array(english, dtype=object))
        translations = [text.decode("utf-8") for text in served["translation"]]
    refs = [references[sentence] for sentence in english]
    bleu, chrf = corpus_scores(translations, refs)
    bleu_plain, chrf_plain = corpus_scores([normalized(t) for t in translations],
                                           [[normalized(r) for r in group] for group in refs])
    client = mlflow.tracking.MlflowClient()
    epochs = client.get_metric_history(summary["run_id"], "epoch_seconds")
    budget = client.get_metric_history(summary["run_id"], "train_seconds")
    return {"preset": preset, "seed": summary["config"]["seed"], "test_bleu": round(bleu, 2), "test_chrf": round(chrf, 2),
            "test_bleu_lowercase_no_punctuation": round(bleu_plain, 2),
            "test_chrf_lowercase_no_punctuation": round(chrf_plain, 2), "sentences": len(english),
            "epochs": len(epochs), "training_seconds": round(budget[-1].value if budget else
                                                             sum(metric.value for metric in epochs), 1),
            "total_wall_seconds": round(wall, 1), "run_id": summary["run_id"],
            "samples": list(zip(english[:8], translations[:8]))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["default"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[None], help="model seeds (default: the preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-dir", default=None, help="default: $DLSUITE_DATA_DIR/spa_eng")
    parser.add_argument("--tracking-uri", default=None, help="default: the suite's store in ./mlruns")
    args = parser.parse_args()

    started, rows = time.perf_counter(), []
    for preset in args.presets:
        for seed in args.seeds:
            rows.append(train_run(preset, seed, args))
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    print(json.dumps({"rows": rows, "total_wall_seconds": round(time.perf_counter() - started, 1),
                      "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(),
                      "command": " ".join([".venv/bin/python", *sys.argv])}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
