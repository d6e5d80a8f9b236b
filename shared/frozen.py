"""Train only what trains: a model's frozen front computed once, the layers after it trained on its output.

A pretrained feature extractor that is frozen and sees no augmentation gives every example the same output in
every epoch. Keras's transfer-learning guide names the fast way to train over one: run the extractor once over
the data, then train the new layers on what it produced. `Task.fit` does this when `Task.frozen_features(config)`
names the layer where the frozen front ends (`shared.app`): an epoch then costs the head's time, not the
extractor's. The model the pipeline logs, exports and serves is still the whole model: the head shares its
layers, so training the head trains them. A `keras.layers.Normalization` that reads the frozen layer's output and
was built without `mean` and `variance` is adapted on the training set's output of that one pass (`adapt_readers`),
so the task need not run the extractor over the data a second time for its statistics.
"""

import time

import keras
import numpy as np

from shared.callbacks import fit_verbosity


def split_at(model, layer_name):
    """`(extractor, head)`: the functional `model` cut at the output of its layer `layer_name`. Both share the
    model's layers; the head is compiled as the model is (`get_compile_config`). Raises ValueError when the layer
    is missing or a trainable weight lies before it (then its output changes while training)."""
    try:
        layer = model.get_layer(layer_name)
    except ValueError as error:
        raise ValueError(f"Task.frozen_features names no layer of the model. Received: {layer_name!r}. "
                         f"Expected one of: {', '.join(layer.name for layer in model.layers)}.") from error
    extractor = keras.Model(model.inputs, layer.output, name=f"{model.name}_frozen")
    if extractor.trainable_weights:
        names = sorted({weight.path.split("/")[0] for weight in extractor.trainable_weights})
        raise ValueError(f"Layers before {layer_name!r} train, so their output is not fixed. Received trainable "
                         f"weights in: {', '.join(names)}. Expected every layer up to {layer_name!r} frozen "
                         "(`layer.trainable = False`), or `Task.frozen_features` returning None.")
    head = keras.Model(layer.output, model.outputs, name=f"{model.name}_head")
    head.compile_from_config(model.get_compile_config())
    return extractor, head


def adapt_readers(model, layer_name, features):
    """Adapt each `Normalization` of `model` that reads the output of `layer_name` and was built without statistics
    on `features` (a dataset from `precompute`)."""
    output = model.get_layer(layer_name).output
    readers = [layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)
               and layer.input_mean is None and layer.input is output]
    for reader in readers:
        reader.adapt(features.map(lambda inputs, *_: inputs))


def precompute(extractor, dataset, *, shuffle=False, seed=0, label=""):
    """`dataset` (batches of `inputs`, `(inputs, targets)` or `(inputs, targets, sample_weights)`) with each
    batch's inputs replaced by the extractor's output, computed once here: the same batch sizes, reshuffled each
    epoch when `shuffle`. Prints how many examples it computed and how long that took."""
    import tensorflow as tf

    started, outputs, rest = time.perf_counter(), [], []
    total = dataset.cardinality().numpy()
    progress = keras.utils.Progbar(total if total > 0 else None, verbose=1 if fit_verbosity() == 1 else 0)
    for step, batch in enumerate(dataset):
        inputs, others = (batch[0], batch[1:]) if isinstance(batch, tuple) else (batch, ())
        outputs.append(keras.ops.convert_to_numpy(extractor.predict_on_batch(inputs)))
        rest.append(others)
        progress.update(step + 1)
    if not outputs:
        raise ValueError(f"No {label or 'data'} to compute frozen features on. Received: an empty dataset.")
    columns = (np.concatenate(outputs), *keras.tree.map_structure(lambda *parts: np.concatenate(parts), *rest))
    result = tf.data.Dataset.from_tensor_slices(columns if len(columns) > 1 else columns[0])
    if shuffle:
        result = result.shuffle(len(columns[0]), seed=seed, reshuffle_each_iteration=True)
    print(f"dlsuite: frozen features of {len(columns[0])} {label} examples computed once in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return result.batch(len(outputs[0])).prefetch(tf.data.AUTOTUNE)
