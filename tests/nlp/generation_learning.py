"""Did an exported language model or translator learn? Scored by the tests on the raw files, independently of
the app: the files are read here with plain Python and the export called through `tf.saved_model.load` on raw
strings. Each function returns `(score, chance)`, higher is better, as `tests/test_contract.py` expects.
"""

from pathlib import Path

import numpy as np


def _signature(export_dir, name):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - the WordPiece ops of the translation graph

    return tf.saved_model.load(str(export_dir)).signatures[name]


def language_model_nats(export_dir, data_root, length=64, count=200):
    """`(-nats per character, -log(number of distinct characters))` on the last 10% of Tiny Shakespeare.

    `count` pieces of `length` characters that start after a newline (the `logits` signature reads each text as
    following one). Chance is a uniform guess over the file's characters (4.17 nats for its 65).
    """
    import tensorflow as tf

    text = (Path(data_root) / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8")
    validation = text[int(len(text) * 0.9):]
    starts = [index + 1 for index, character in enumerate(validation[:-length - 1]) if character == "\n"]
    chosen = np.random.default_rng(0).choice(starts, size=min(count, len(starts)), replace=False)
    pieces = [validation[start:start + length] for start in chosen]
    scores = _signature(export_dir, "logits")(text=tf.constant(pieces))
    nats = -float(scores["log_likelihood"].numpy().sum()) / float(scores["num_characters"].numpy().sum())
    return -nats, -float(np.log(len(set(text))))


def translation_chrf(export_dir, data_root, count=300):
    """`(chrF of the served translations, chrF of copying the English sentence)` on `count` random pairs of
    spa-eng (training pairs may be among them: the tests do not know the app's split; the app's own test
    metrics cover held-out sentences). Copying the source shares names, numbers and cognates with Spanish."""
    import sacrebleu
    import tensorflow as tf

    lines = (Path(data_root) / "spa_eng" / "spa-eng" / "spa.txt").read_text(encoding="utf-8").splitlines()
    chosen = np.random.default_rng(0).choice(len(lines), size=count, replace=False)
    english, spanish = zip(*(lines[index].split("\t")[:2] for index in chosen))
    served = _signature(export_dir, "serving_default")(text=tf.constant(list(english)))["translation"].numpy()
    translations = [text.decode("utf-8") for text in served]
    return (sacrebleu.corpus_chrf(translations, [list(spanish)]).score,
            sacrebleu.corpus_chrf(list(english), [list(spanish)]).score)
