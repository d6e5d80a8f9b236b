"""The models' feature bins: a decision tree chooses each feature's boundaries on the training labels, and the
one-hot bin sits beside the normalized value, so a step in the fraud rate (the handbook's payments above 220) is a
step in the model's input, not a slope a smooth network must learn from a few dozen examples."""

import keras
import numpy as np

from apps.fraud import features, models
from tests.fraud import tiny_data


def test_tree_bins_find_the_step_in_the_fraud_rate():
    rng = np.random.default_rng(0)
    amounts = rng.uniform(0, 300, 20_000)
    labels = (amounts > 220) | (rng.random(len(amounts)) < 0.01)  # every payment above 220, and 1% noise
    boundaries = models.tree_bins(amounts, labels.astype(int), max_bins=4, min_bin_size=20)
    assert boundaries == sorted(boundaries) and 1 <= len(boundaries) <= 3
    assert min(abs(boundary - 220) for boundary in boundaries) < 0.1
    assert models.tree_bins(np.full(100, 3.0), np.arange(100) % 2, max_bins=4, min_bin_size=5) == []  # no split


def test_tree_bins_keep_each_bin_at_least_min_bin_size_rows():
    amounts = np.arange(1000, dtype=float)
    labels = (amounts >= 995).astype(int)  # five frauds at the very top
    assert models.tree_bins(amounts, labels, max_bins=8, min_bin_size=20) in ([], [979.5])  # no bin of 5 rows
    assert 994.5 in models.tree_bins(amounts, labels, max_bins=8, min_bin_size=5)


def test_a_model_with_feature_bins_one_hot_encodes_the_step_and_reloads(tmp_path):
    frame = tiny_data.stream(last_day="2018-07-20").reset_index(drop=True)  # frauds: amounts 250-400, genuine 5-120
    inputs = features.serving_inputs(frame, features.aggregates(frame, 7), sequence_length=3)
    labels = frame["TX_FRAUD"].to_numpy()
    model = models.build("sequence", inputs, hidden_units=(4,), sequence_length=3, recurrent_units=2, seed=1,
                         training_labels=labels, feature_bins=4)
    bins = model.get_layer("log_amount_bins")
    boundary = [value for value in bins.bin_boundaries if np.log1p(120) < value < np.log1p(250)]
    assert len(boundary) == 1, bins.bin_boundaries
    one_hot = np.asarray(keras.Model(model.inputs, bins.output)(inputs))
    above = one_hot[:, bins.bin_boundaries.index(boundary[0]) + 1:].sum(axis=1)
    np.testing.assert_array_equal(above, labels)  # the bins above the step hold exactly the frauds
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(models.scores(reloaded, inputs), models.scores(model, inputs), rtol=1e-5, atol=1e-6)
    plain = models.build("sequence", inputs, hidden_units=(4,), sequence_length=3, recurrent_units=2, seed=1)
    assert not any(isinstance(layer, keras.layers.Discretization) for layer in plain.layers)  # off by default
