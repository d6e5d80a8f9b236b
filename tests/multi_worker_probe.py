"""One worker of a tiny `model.fit` under MultiWorkerMirroredStrategy (run by tests/test_distribute_fix.py).

    TF_CONFIG=... python tests/multi_worker_probe.py fix|unpatched OUT.json

Creates the strategy first (with or without `shared.multi_worker_fix`), fits a small dense classifier on fixed
data for one epoch and writes the loss to OUT.json, or the error that stopped `fit`.
"""

import json
import sys

import numpy as np


def main(mode, out_path):
    import tensorflow as tf

    if mode == "fix":
        from shared import multi_worker_fix

        multi_worker_fix.apply()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import keras

    keras.utils.set_random_seed(1)
    features = np.random.default_rng(0).integers(0, 255, size=(64, 8)).astype("uint8")
    labels = (features.sum(axis=1) % 2).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    with strategy.scope():
        inputs = keras.Input((8,), dtype="uint8")
        hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    try:
        history = model.fit(dataset, epochs=1, verbose=0)
        result = {"loss": history.history["loss"][-1]}
    except Exception as error:  # noqa: BLE001 - the test reads which error the unpatched trainer raises
        result = {"error": f"{type(error).__name__}: {error}"[:2000]}
    with open(out_path, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
