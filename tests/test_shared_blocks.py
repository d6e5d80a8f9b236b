"""shared/: every block, loss, optimizer and activation selectable by name builds and computes."""

import keras
import numpy as np
import pytest

from shared import layers
from shared.losses import TripletLoss
from shared.optimizers import ACTIVATIONS, LOSSES, OPTIMIZERS, get_activation, get_loss, get_optimizer


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


def test_unknown_recurrent_cell_is_named():
    with pytest.raises(ValueError, match=r"Received: cell='transformer'. Expected one of: gru, lstm, simple_rnn"):
        layers.recurrent_block(keras.Input((4, 2)), 3, cell="transformer")


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_by_name(name):
    values = keras.ops.convert_to_numpy(get_activation(name)(np.array([[-2.0, 0.0, 3.0]], "float32")))
    assert values.shape == (1, 3) and np.isfinite(values).all()
    if name == "leaky_relu":
        assert values[0, 0] < 0 < values[0, 2]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_by_name(name):
    loss = get_loss(name)
    if name == "triplet":
        y_pred = np.array([[[0.0, 0.0], [0.1, 0.0], [1.0, 0.0]]], "float32")  # anchor, positive, negative
        value = loss(np.zeros((1,)), y_pred)
    elif name.startswith("sparse"):
        value = loss(np.array([1]), np.array([[0.2, 0.8]], "float32"))
    else:
        value = loss(np.array([[0.0, 1.0]], "float32"), np.array([[0.2, 0.8]], "float32"))
    assert float(value) >= 0.0


def test_triplet_loss_margin():
    y_pred = np.array([[[0.0], [0.0], [0.1]]], "float32")  # d(a,p)=0, d(a,n)=0.01
    assert float(TripletLoss(margin=0.2)(np.zeros((1,)), y_pred)) == pytest.approx(0.19)
    with pytest.raises(ValueError, match=r"Received: margin=0"):
        TripletLoss(margin=0)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_by_name_takes_a_step(name):
    weight = keras.Variable(np.ones(2, "float32"))
    optimizer = get_optimizer(name, learning_rate=0.1)
    optimizer.apply_gradients([(keras.ops.ones(2), weight)])
    assert (keras.ops.convert_to_numpy(weight) < 1.0).all()


def test_unknown_names_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"Received: optimizer='lamb'. Expected one of: sgd, adagrad"):
        get_optimizer("lamb", 0.1)
    with pytest.raises(ValueError, match=r"Received: loss='focal'"):
        get_loss("focal")
