"""Did an exported text classifier learn? Scored by the tests on SMS Spam's file, independently of the app.

The file is read with `tests.nlp.tiny_data.read_sms` (not `apps.nlp.data`) and the export called through
`tf.saved_model.load` on raw strings.
"""

from pathlib import Path

import numpy as np

from tests.nlp.tiny_data import read_sms


def spam_f1(export_dir, data_root):
    """`(F1 of spam, F1 of calling every message spam)` over every message of the collection.

    Training messages are included (the tests do not know the app's split); the app's own test metrics
    cover held-out messages. Chance, the F1 of "all spam", is about 0.24 at 13% spam.
    """
    import tensorflow as tf

    texts, labels = read_sms(Path(data_root) / "sms_spam" / "SMSSpamCollection")
    signature = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    names = np.concatenate([signature(text=tf.constant(texts[start:start + 512]))["class_names"].numpy()
                            for start in range(0, len(texts), 512)])
    predicted = names == b"spam"
    true_positives = float((predicted & (labels == 1)).sum())
    f1 = 2 * true_positives / max(predicted.sum() + labels.sum(), 1)
    return f1, 2 * labels.mean() / (1 + labels.mean())
