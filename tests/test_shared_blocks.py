"""shared/: every block, loss, optimizer and activation selectable by name builds and computes the right thing."""

import keras
import numpy as np
import pytest

from shared import layers
from shared.losses import TripletLoss
from shared.optimizers import ACTIVATIONS, LOSSES, OPTIMIZERS, build_optimizer, get_activation, get_loss, get_optimizer


def test_blocks_compose_into_a_trainable_model():
    images = keras.Input((8, 8, 3))
    x = layers.conv_block(images, 8, l2=1e-4, dropout_rate=0.1, pool=True, name="conv")
    x = layers.residual_block(x, 16, strides=2, name="residual")  # projection shortcut
    x = layers.residual_block(x, 16, name="identity")  # identity shortcut
    x = keras.layers.Reshape((-1, 16))(x)
    x = layers.recurrent_block(x, 4, cell="lstm", bidirectional=True, return_sequences=False, name="rnn")
    outputs = layers.dense_block(x, 3, activation="softmax", batch_norm=True, l1=1e-5, l2=1e-4, name="head")
    model = keras.Model(images, outputs)
    model.compile("adam", "categorical_crossentropy")
    features = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    history = model.fit(features, np.eye(3)[np.arange(16) % 3], epochs=2, verbose=0)
    assert model.output_shape == (None, 3) and np.isfinite(history.history["loss"]).all()
    assert len(model.losses) > 0  # the L1/L2 regularizers are in place
    assert model.get_layer("residual_proj") is not None


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple_rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_recurrent_cell_by_name(cell, bidirectional):
    sequences = keras.Input((5, 2))
    outputs = layers.recurrent_block(sequences, 3, cell=cell, bidirectional=bidirectional, name="rnn")
    model = keras.Model(sequences, outputs)
    values = model(np.ones((4, 5, 2), "float32"))
    assert values.shape == (4, 5, 6 if bidirectional else 3)
    assert model.get_layer("rnn_bidirectional" if bidirectional else f"rnn_{cell}") is not None


def test_blocks_build_in_one_dimension_too():
    frames = keras.Input((16, 4))
    x = layers.conv_block(frames, 8, rank=1, pool=True, dropout_rate=0.1, name="conv")
    x = layers.residual_block(x, 8, rank=1, name="residual")
    model = keras.Model(frames, x)
    assert model(np.ones((2, 16, 4), "float32")).shape == (2, 8, 8)
    assert layers.regularizer() is None and layers.regularizer(l2=1e-4) is not None


def test_unknown_recurrent_cell_is_named():
    with pytest.raises(ValueError, match=r"Received: cell='transformer'. Expected one of: gru, lstm, simple_rnn"):
        layers.recurrent_block(keras.Input((4, 2)), 3, cell="transformer")


def _softmax(x):
    exponentials = np.exp(x - x.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def _gelu(x):  # Keras' default: the exact form with the error function
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


ACTIVATION_REFERENCES = {  # numpy, so a name mapped to the wrong function fails
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.1 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "softmax": _softmax,
    "swish": lambda x: x / (1 + np.exp(-x)),
    "gelu": _gelu,
    "linear": lambda x: x,
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_by_name(name):
    inputs = np.array([[-2.0, -0.5, 0.0, 0.7, 3.0]], "float32")
    values = keras.ops.convert_to_numpy(get_activation(name)(inputs))
    np.testing.assert_allclose(values, ACTIVATION_REFERENCES[name](inputs.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_every_activation_has_a_reference():
    assert set(ACTIVATION_REFERENCES) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(name for name in LOSSES if name != "triplet"))
def test_every_loss_by_name_prefers_the_right_prediction(name):
    loss = get_loss(name)
    assert type(loss).__name__ == LOSSES[name]
    targets = np.array([1, 0]) if name.startswith("sparse") else np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
    good = np.array([[0.05, 0.95], [0.9, 0.1]], "float32")
    bad = good[:, ::-1].copy()
    assert 0.0 <= float(loss(targets, good)) < float(loss(targets, bad))


def test_triplet_loss_by_name():
    loss = get_loss("triplet", margin=0.5)
    assert isinstance(loss, TripletLoss) and loss.margin == 0.5
    y_pred = np.array([[[0.0, 0.0], [0.1, 0.0], [1.0, 0.0]]], "float32")  # anchor, positive, negative
    assert float(loss(np.zeros((1,)), y_pred)) == 0.0  # d(a,p)=0.01 + 0.5 < d(a,n)=1


def _separation(embedded, labels):
    """Leave-one-out 1-nearest-neighbour accuracy, and mean between-class / within-class distance."""
    distances = np.sqrt(((embedded[:, None] - embedded[None]) ** 2).sum(-1))
    same = labels[:, None] == labels[None]
    np.fill_diagonal(distances, np.inf)
    accuracy = (labels[distances.argmin(axis=1)] == labels).mean()
    np.fill_diagonal(distances, 0.0)
    return accuracy, distances[~same].mean() / distances[same & ~np.eye(len(labels), dtype=bool)].mean()


def test_training_with_the_triplet_loss_separates_two_classes():
    """A tiny embedding trained by name with "triplet": its loss falls and it pulls the classes apart."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def points(labels):  # the class is the sign of feature 0; features 1-3 are noise
        features = rng.normal(scale=2.0, size=(len(labels), 4))
        features[:, 0] = np.where(labels == 1, 1.0, -1.0) + rng.normal(scale=0.3, size=len(labels))
        return features.astype("float32")

    def triplets(count):  # anchor and positive of one class, negative of the other
        anchors = rng.integers(0, 2, count)
        return np.stack([points(anchors), points(anchors), points(1 - anchors)], axis=1)

    embedding = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(2)], name="embedding")
    model = keras.Sequential([keras.Input((3, 4)), keras.layers.TimeDistributed(embedding)])
    model.compile(optimizer=get_optimizer("adam", 1e-2), loss=get_loss("triplet", margin=1.0))
    train, held_out = triplets(1024), triplets(256)
    labels = np.arange(400) % 2
    probe = points(labels)
    loss_before = model.evaluate(held_out, np.zeros(len(held_out)), verbose=0)
    accuracy_before, ratio_before = _separation(embedding.predict(probe, verbose=0), labels)

    model.fit(train, np.zeros(len(train)), epochs=15, batch_size=64, verbose=0)
    loss_after = model.evaluate(held_out, np.zeros(len(held_out)), verbose=0)
    accuracy_after, ratio_after = _separation(embedding.predict(probe, verbose=0), labels)
    assert loss_after < 0.2 * loss_before, (loss_before, loss_after)
    assert accuracy_before < 0.85 and accuracy_after > 0.97, (accuracy_before, accuracy_after)
    assert ratio_after > 2.5 and ratio_after > 2 * ratio_before, (ratio_before, ratio_after)


def test_triplet_loss_margin():
    y_pred = np.array([[[0.0], [0.0], [0.1]]], "float32")  # d(a,p)=0, d(a,n)=0.01
    assert float(TripletLoss(margin=0.2)(np.zeros((1,)), y_pred)) == pytest.approx(0.19)
    with pytest.raises(ValueError, match=r"Received: margin=0"):
        TripletLoss(margin=0)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_by_name_takes_a_step(name):
    weight = keras.Variable(np.ones(2, "float32"))
    optimizer = get_optimizer(name, learning_rate=0.1)
    assert type(optimizer).__name__ == OPTIMIZERS[name]
    optimizer.apply_gradients([(keras.ops.ones(2), weight)])
    assert (keras.ops.convert_to_numpy(weight) < 1.0).all()


def encoder_and_head():
    """A two-layer model whose first layer stands for a pretrained encoder (a nested model, as in the apps)."""
    inputs = keras.Input((3,))
    encoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="encoder_dense")], name="encoder")
    model = keras.Model(inputs, keras.layers.Dense(1, name="head_dense")(encoder(inputs)))
    return model, encoder


def split_config(encoder_learning_rate, epochs=1, max_train_seconds=None):
    import types

    return types.SimpleNamespace(optimizer="sgd", learning_rate=0.1, encoder_learning_rate=encoder_learning_rate,
                                 learning_rate_schedule="constant", warmup_epochs=0, epochs=epochs, weight_decay=0.0,
                                 max_train_seconds=max_train_seconds, clipnorm=None, ema_momentum=None)


def test_a_pretrained_encoder_trains_at_its_own_learning_rate():
    features, targets = np.random.default_rng(0).normal(size=(16, 3)).astype("float32"), np.ones((16, 1), "float32")
    steps = {}
    for encoder_rate in (None, 1e-3):  # None: one optimizer for everything, at 0.1
        keras.utils.set_random_seed(1)
        model, encoder = encoder_and_head()
        before = [keras.ops.convert_to_numpy(w) for w in model.weights]
        model.compile(optimizer=build_optimizer(split_config(encoder_rate), 1, encoder=encoder), loss="mse")
        model.fit(features, targets, batch_size=16, epochs=1, shuffle=False, verbose=0)
        steps[encoder_rate] = {w.path: keras.ops.convert_to_numpy(w) - b for w, b in zip(model.weights, before)}
    assert type(model.optimizer).__name__ == "MultiOptimizer"
    for path, step in steps[1e-3].items():  # SGD's first step is linear in the learning rate
        ratio = 1e-2 if "encoder_dense/" in path else 1.0
        assert np.abs(step).max() > 1e-4 * ratio  # every variable moved
        np.testing.assert_allclose(step, steps[None][path] * ratio, rtol=1e-3, atol=1e-7)  # float32 differences
    assert sum("encoder_dense/" in path for path in steps[None]) == 2  # kernel and bias


def check_a_resumed_run_ends_where_a_straight_one_does(backup, build, epochs, extra_callbacks=list):
    """BackupAndRestore (the contract's `fit`): a run "killed" after `epochs - 1` epochs and resumed ends with the
    weights of an uninterrupted one. `build()` -> a compiled model, seeded alike each time; `extra_callbacks()` ->
    the callbacks after BackupAndRestore."""
    features = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    targets = features.sum(axis=1, keepdims=True)

    def run(epochs, backup=None):
        keras.utils.set_random_seed(1)
        model = build()
        callbacks = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)] if backup else []
        model.fit(features, targets, batch_size=4, epochs=epochs, shuffle=False, verbose=0,
                  callbacks=[*callbacks, *extra_callbacks()])
        return [keras.ops.convert_to_numpy(w) for w in model.weights]

    straight = run(epochs)
    run(epochs - 1, backup=backup)  # "killed" after its next-to-last epoch
    resumed = run(epochs, backup=backup)
    for got, expected in zip(resumed, straight):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_resumed_run_keeps_both_optimizers_state(tmp_path):
    """An interrupted run with an encoder optimizer ends where an uninterrupted one does only if both optimizers'
    momentum comes back."""

    def build():
        model, encoder = encoder_and_head()
        model.compile(optimizer=build_optimizer(split_config(1e-2, epochs=2), 1, encoder=encoder), loss="mse")
        return model

    check_a_resumed_run_ends_where_a_straight_one_does(tmp_path / "backup", build, epochs=2)


def test_a_wall_time_budget_anneals_each_optimizer_by_the_clock_and_stops_training():
    """`max_train_seconds`: the learning rates follow the clock (each from its own base: the encoder's 1e-2, the
    rest's 0.1) and training stops after the batch that crosses the budget, mid-epoch."""
    from shared.callbacks import TimeBudget

    clock, seen = [0.0], []

    class Recorder(keras.callbacks.Callback):  # runs after TimeBudget set the rates; each batch "takes" 25 s
        def on_train_batch_begin(self, batch, logs=None):
            seen.append([float(optimizer.learning_rate) for optimizer in self.model.optimizer.optimizers])
            clock[0] += 25.0

    model, encoder = encoder_and_head()
    config = split_config(1e-2, epochs=10, max_train_seconds=100.0)
    model.compile(optimizer=build_optimizer(config, 1, encoder=encoder), loss="mse")
    budget = TimeBudget(100.0, config.learning_rate, config.encoder_learning_rate, clock=lambda: clock[0])
    features = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    history = model.fit(features, features.sum(axis=1, keepdims=True), batch_size=2, epochs=10, verbose=0,
                        callbacks=[budget, Recorder()])
    assert len(seen) == 4 and int(model.optimizer.iterations) == 4  # 8 batches an epoch; stopped after 100 s
    assert history.history["train_seconds"] == [100.0]
    names = [optimizer.name for optimizer in model.optimizer.optimizers]
    for fraction, rates in zip((0.0, 0.25, 0.5, 0.75), seen):
        expected = {"encoder": 1e-2 * budget.scale(fraction)}
        assert rates == pytest.approx([expected.get(name, 0.1 * budget.scale(fraction)) for name in names])
    assert budget.scale(0.0) == pytest.approx(0.05) and budget.scale(0.5) == pytest.approx(0.5, abs=0.02)
    assert seen[1][0] > seen[2][0] > seen[3][0]  # annealing


def averaged_fit(epochs, stop_after_step=None, momentum=0.5):
    """A tiny regression under SGD with weight averaging (`shared.callbacks.AveragedWeights`): the model, the fit's
    history, the raw weights at each step's start and end, and the moving average after each step, computed here
    from the raw weights (Keras's rule: the first step's average is the weights themselves)."""
    from shared.callbacks import AveragedWeights

    rng = np.random.default_rng(0)
    features = rng.normal(size=(16, 3)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5]], "float32")
    starts, ends = [], []

    class Recorder(keras.callbacks.Callback):  # after AveragedWeights, like every callback of the contract's fit
        def on_train_batch_begin(self, batch, logs=None):
            starts.append(self.model.get_weights())

        def on_train_batch_end(self, batch, logs=None):
            ends.append(self.model.get_weights())
            if len(ends) == stop_after_step:
                self.model.stop_training = True  # what the wall-time budget does

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=get_optimizer("sgd", 0.05, ema_momentum=momentum), loss="mse")
    history = model.fit(features[:12], targets[:12], validation_data=(features[12:], targets[12:]), batch_size=3,
                        epochs=epochs, shuffle=False, verbose=0, callbacks=[AveragedWeights(), Recorder()])
    averages = [ends[0]]
    for weights in ends[1:]:
        averages.append([momentum * a + (1 - momentum) * w for a, w in zip(averages[-1], weights)])
    return model, history, starts, ends, averages, (features[12:], targets[12:])


def test_weight_averaging_validates_on_the_average_trains_the_raw_weights_and_ends_on_the_average():
    model, history, starts, ends, averages, (x, y) = averaged_fit(epochs=3)
    assert len(ends) == 12  # 4 steps an epoch
    for step in range(1, 12):  # each step starts from the raw weights the last one ended on, across epochs too
        for start, end in zip(starts[step], ends[step - 1]):
            np.testing.assert_allclose(start, end, rtol=1e-6, atol=1e-7)
    assert any(np.abs(a - w).max() > 1e-3 for a, w in zip(averages[-1], ends[-1]))  # the two differ
    for weights, expected in zip(model.get_weights(), averages[-1]):  # the trained model is the average
        np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
    for epoch, val_loss in enumerate(history.history["val_loss"]):  # validation saw each epoch's average
        model.set_weights(averages[4 * epoch + 3])
        assert float(model.evaluate(x, y, verbose=0)) == pytest.approx(val_loss, rel=1e-4)


def test_weight_averaging_ends_on_the_average_when_training_stops_early():
    model, _history, _starts, ends, averages, _validation = averaged_fit(epochs=3, stop_after_step=6)
    assert len(ends) == 6  # stopped in the second epoch
    for weights, expected in zip(model.get_weights(), averages[-1]):
        np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)


def test_a_resumed_run_keeps_the_weights_average(tmp_path):
    """The contract's order, BackupAndRestore before AveragedWeights: an interrupted run ends where an
    uninterrupted one does, raw weights and their average both restored."""
    from shared.callbacks import AveragedWeights

    def build():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        model.compile(optimizer=get_optimizer("adam", 1e-2, ema_momentum=0.8), loss="mse")
        return model

    check_a_resumed_run_ends_where_a_straight_one_does(tmp_path / "backup", build, epochs=3,
                                                        extra_callbacks=lambda: [AveragedWeights()])


def test_unknown_names_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"Received: optimizer='lamb'. Expected one of: sgd, adagrad"):
        get_optimizer("lamb", 0.1)
    with pytest.raises(ValueError, match=r"Received: loss='focal'"):
        get_loss("focal")
