"""What every classifier task shares: example caps, targets, compile, the serving head and evaluation.

A classifier task (vision, speech digits, nlp, fraud) builds one end-to-end Keras model that takes
the raw serving inputs and returns class probabilities; this module does the rest the same way
for all of them:

    limits(config)                           -> (train, validation, test) example caps
    compile_classifier(model, config, train) -> the model, compiled from a SupervisedConfig (targets one-hot:
                                                `shared.data.one_hot` as the batch map)
    head(probabilities, class_names)         -> {probabilities, class_ids, class_names}: what endpoints return
    evaluate(serving, inputs, labels, class_names) -> (Report, serving outputs)

Every classifier's `serving_default` returns the same three outputs (`OUTPUTS`), so a client
written for one classifier reads any other.
"""

import keras
import tensorflow as tf

from shared import data as shared_data
from shared.metrics import classification_report
from shared.optimizers import build_optimizer

OUTPUTS = ("probabilities", "class_ids", "class_names")


# === Data ===


def limits(config):
    """`(train, validation, test)` example caps from `max_train_examples` and `max_test_examples`.

    The validation slice is capped at an eighth of the training cap; None means no cap.
    """
    train = config.max_train_examples
    return train, (max(1, train // 8) if train else None), config.max_test_examples


# === Model ===


def compile_classifier(model, config, train, encoder=None):
    """Compile `model` (softmax outputs) from a `SupervisedConfig`: its optimizer and learning-rate
    schedule over `train`'s steps per epoch (a pretrained `encoder` inside it at the config's
    `encoder_learning_rate`: `shared.optimizers.build_optimizer`), cross-entropy with the config's
    `label_smoothing` (0 when it has none) on one-hot targets, and accuracy."""
    model.compile(
        optimizer=build_optimizer(config, shared_data.steps_per_epoch(train), encoder=encoder),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=getattr(config, "label_smoothing", 0.0)),
        metrics=["accuracy"],
    )
    return model


# === Serving and evaluation ===


def head(probabilities, class_names):
    """The named outputs of every classifier's signatures, from probabilities `[batch, classes]`.

    An endpoint is then two lines, named after its input: `def serve(images): return
    head(model(images, training=False), class_names)`.
    """
    class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {"probabilities": probabilities, "class_ids": class_ids,
            "class_names": tf.gather(tf.constant(list(class_names)), class_ids)}


def evaluate(serving, inputs, labels, class_names, batch_size=256):
    """Score `serving_default` of `serving` (a `shared.export.Serving`) on `inputs` (a dict of arrays).

    Returns `(report, outputs)`: accuracy, loss, macro-F1, errors, the confusion matrix and
    `per_class_metrics.json` (`shared.metrics.classification_report`), and the serving outputs
    for the task's own figures and tables.
    """
    outputs = serving.batched(batch_size, **inputs)
    return classification_report(labels, outputs["probabilities"], class_names), outputs
