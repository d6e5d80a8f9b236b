"""The four fraud models. Each takes the raw serving inputs (`features.serving_inputs`) and returns one fraud
score per transaction, `[batch]` float32: a probability (supervised, sequence) or an anomaly score (autoencoder,
vae: higher is more unusual). Every model starts with `features.TransactionFeatures` and a Normalization layer
adapted on the training period, so the exported model needs nothing but the raw fields. With `feature_bins`, the
classifiers also read each feature's one-hot bin (`keras.layers.Discretization`), the boundaries a decision tree
draws on that feature between the training period's classes (`tree_bins`): target-aware bins, so a step in the fraud
rate is a step in the input.

With `ensemble_size` > 1, `supervised` and `sequence` return `[batch, heads]`: independently initialized heads
over the same features, each trained by its own cross-entropy (the targets are repeated per head); the score is
their mean (`fraud_score`). The anomaly models are trained on genuine transactions only, and their output is their
loss: their training loss is `score_loss` (the mean of the output), so `model.fit` and early stopping work unchanged.
The builders take explicit arguments; the task compiles (`loss` gives the loss).
"""

import keras
import numpy as np
import tensorflow as tf

from apps.fraud import features
from shared.layers import dense_block, recurrent_block


@keras.saving.register_keras_serializable(package="dlsuite_fraud")
def score_loss(y_true, y_pred):
    """The anomaly models' loss: their own output (the per-transaction reconstruction loss)."""
    return y_pred


# === Layers ===


@keras.saving.register_keras_serializable(package="dlsuite_fraud")
class ReconstructionError(keras.layers.Layer):
    """The mean squared difference of `[features, reconstruction]`, per row."""

    def call(self, inputs):
        original, reconstruction = inputs
        return tf.reduce_mean(tf.square(original - reconstruction), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)


@keras.saving.register_keras_serializable(package="dlsuite_fraud")
class VariationalScore(keras.layers.Layer):
    """A VAE with a Gaussian decoder over normalized features.

    Training: the negative ELBO per row (the reconstruction's negative log-likelihood for one sampled code,
    plus the KL divergence to the prior). Inference: the negative log reconstruction probability
    (An & Cho, 2015): the decoder's likelihood of the row averaged over `num_samples` codes drawn from the
    encoder's posterior with fixed noise (a weight), so serving is deterministic and the export verifies.
    """

    def __init__(self, hidden_units=(64, 16), latent_dim=4, num_samples=16, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units, self.latent_dim, self.num_samples, self.seed = tuple(hidden_units), latent_dim, \
            num_samples, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        """Every sublayer is built here (not on first call), so a saved model reloads its weights."""
        width = input_shape[-1]
        self.encoder, self.decoder = [], []
        for units in self.hidden_units:
            self.encoder.append(keras.layers.Dense(units, activation="relu", dtype=self.dtype_policy))
            self.encoder[-1].build((None, width))
            width = units
        self.code = keras.layers.Dense(2 * self.latent_dim, dtype=self.dtype_policy)
        self.code.build((None, width))
        width = self.latent_dim
        for units in reversed(self.hidden_units):
            self.decoder.append(keras.layers.Dense(units, activation="relu", dtype=self.dtype_policy))
            self.decoder[-1].build((None, width))
            width = units
        self.output_layer = keras.layers.Dense(2 * input_shape[-1], dtype=self.dtype_policy)
        self.output_layer.build((None, width))
        self.noise = self.add_weight(shape=(self.num_samples, self.latent_dim), trainable=False, name="noise",
                                     initializer=keras.initializers.RandomNormal(seed=self.seed))

    def _negative_log_likelihood(self, inputs, codes):
        hidden = codes
        for layer in self.decoder:
            hidden = layer(hidden)
        mean, log_variance = tf.split(self.output_layer(hidden), 2, axis=-1)
        log_variance = tf.clip_by_value(log_variance, -6.0, 6.0)
        terms = np.log(2 * np.pi) + log_variance + tf.square(inputs - mean) / tf.exp(log_variance)
        return 0.5 * tf.reduce_sum(terms, axis=-1)

    def call(self, inputs, training=False):
        hidden = inputs
        for layer in self.encoder:
            hidden = layer(hidden)
        mean, log_variance = tf.split(self.code(hidden), 2, axis=-1)
        log_variance = tf.clip_by_value(log_variance, -8.0, 8.0)
        if training:
            noise = keras.random.normal(tf.shape(mean), seed=self.seed_generator)
            kl = 0.5 * tf.reduce_sum(tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance, axis=-1)
            return self._negative_log_likelihood(inputs, mean + tf.exp(0.5 * log_variance) * noise) + kl
        codes = mean[None] + tf.exp(0.5 * log_variance)[None] * self.noise[:, None, :]  # [samples, batch, latent]
        likelihoods = -self._negative_log_likelihood(tf.tile(inputs[None], [self.num_samples, 1, 1]), codes)
        return -(tf.reduce_logsumexp(likelihoods, axis=0) - np.log(self.num_samples))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self):
        return {**super().get_config(), "hidden_units": list(self.hidden_units), "latent_dim": self.latent_dim,
                "num_samples": self.num_samples, "seed": self.seed}


def fraud_score(outputs):
    """The served score from a model's output: the mean over an ensemble's heads (`[batch, heads]`)."""
    return tf.reduce_mean(outputs, axis=-1) if len(outputs.shape) == 2 else outputs


# === Functional models ===


def serving_inputs(sequence_length=0):
    """`{name: keras.Input}` of the raw serving inputs (the signature's names); `sequence_length` > 0 adds the
    card's previous payments (the `sequence` model)."""
    inputs = {"tx_datetime": keras.Input(shape=(), dtype="string", name="tx_datetime"),
              "tx_amount": keras.Input(shape=(), dtype="float32", name="tx_amount")}
    inputs.update({name: keras.Input(shape=(), dtype="float32", name=name) for name in features.AGGREGATES})
    if sequence_length:
        inputs["history_tx_amount"] = keras.Input(shape=(sequence_length,), dtype="float32", name="history_tx_amount")
        inputs["history_tx_datetime"] = keras.Input(shape=(sequence_length,), dtype="string",
                                                    name="history_tx_datetime")
    return inputs


def normalized_features(inputs, training_inputs, training_labels=None, feature_bins=0, min_bin_size=20):
    """TransactionFeatures, then a Normalization adapted on the training period's features; with `feature_bins`,
    each feature's one-hot bin beside it (`tree_bins`)."""
    transaction_features = features.TransactionFeatures(name="transaction_features")
    normalization = keras.layers.Normalization(name="normalization")
    training_features = np.asarray(transaction_features(training_inputs))
    normalization.adapt(training_features)
    raw = transaction_features(inputs)
    normalized = normalization(raw)
    if not feature_bins:
        return normalized
    if training_labels is None:
        raise ValueError(f"Received: feature_bins={feature_bins} and training_labels=None. Expected the training "
                         "labels: the bins are the thresholds a decision tree draws between the classes.")
    encoded = [normalized]
    for column, name in enumerate(features.TransactionFeatures.NAMES):
        boundaries = tree_bins(training_features[:, column], training_labels, feature_bins, min_bin_size)
        if boundaries:
            encoded.append(keras.layers.Discretization(bin_boundaries=boundaries, output_mode="one_hot",
                                                       name=f"{name}_bins")(raw[:, column]))
    return keras.layers.Concatenate(name="features_and_bins")(encoded)


def tree_bins(values, labels, max_bins, min_bin_size):
    """The boundaries a decision tree with at most `max_bins` leaves (each of at least `min_bin_size` rows) draws on
    one feature to separate the classes: target-aware bins (Gorishniy et al., 2022), sorted, possibly empty. On one
    feature the best split is deterministic: no seed."""
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_leaf_nodes=max_bins, min_samples_leaf=min_bin_size, random_state=0)
    tree.fit(values[:, None], labels)
    return sorted(float(threshold) for threshold, feature in zip(tree.tree_.threshold, tree.tree_.feature)
                  if feature >= 0)


def build(model, training_inputs, *, hidden_units, dropout_rate=0.0, ensemble_size=1, latent_dim=4,
          sequence_length=0, recurrent_units=32, seed=None, training_labels=None, feature_bins=0):
    """The (uncompiled) model `model` ("supervised", "sequence", "autoencoder" or "vae"); `training_inputs`
    (numpy serving inputs of the training period) adapt its normalization. `sequence_length` and
    `recurrent_units`: the GRU over the card's previous payments (`sequence`); `latent_dim`: the anomaly models'
    bottleneck; `ensemble_size`: independent heads (`supervised`, `sequence`); `feature_bins`: each feature's
    tree-chosen bins on `training_labels`, one-hot beside it (`supervised`, `sequence`)."""
    inputs = serving_inputs(sequence_length if model == "sequence" else 0)
    normalized = normalized_features(inputs, {name: training_inputs[name] for name in
                                              ("tx_datetime", "tx_amount", *features.AGGREGATES)},
                                     training_labels, feature_bins if model in ("supervised", "sequence") else 0)
    if model in ("supervised", "sequence"):
        hidden = normalized
        if model == "sequence":
            steps = features.HistoryFeatures(name="history_features")(inputs)
            summary = recurrent_block(steps, recurrent_units, bidirectional=False, return_sequences=False,
                                      name="history")
            hidden = keras.layers.Concatenate(name="transaction_and_history")([normalized, summary])
        heads = []
        for head in range(ensemble_size):  # independent networks, each with its own loss (a deep ensemble)
            layer = hidden
            for number, units in enumerate(hidden_units):
                layer = dense_block(layer, units, dropout_rate=dropout_rate, name=f"head{head}_hidden_{number}")
            heads.append(keras.layers.Dense(1, activation="sigmoid", dtype="float32",
                                            name=f"head{head}_probability")(layer))
        score = keras.layers.Reshape((), dtype="float32", name="fraud_score")(heads[0]) if len(heads) == 1 else \
            keras.layers.Concatenate(dtype="float32", name="fraud_scores")(heads)
    elif model == "autoencoder":
        hidden = normalized
        for number, units in enumerate([*hidden_units, latent_dim, *reversed(hidden_units)]):
            hidden = dense_block(hidden, units, name=f"autoencoder_{number}")
        reconstruction = keras.layers.Dense(normalized.shape[-1], dtype="float32", name="reconstruction")(hidden)
        score = ReconstructionError(dtype="float32", name="fraud_score")([normalized, reconstruction])
    else:
        score = VariationalScore(hidden_units, latent_dim, seed=seed, dtype="float32", name="fraud_score")(normalized)
    return keras.Model(inputs, score, name=f"fraud_{model}")


def loss(model, imbalance="none", focal_gamma=2.0):
    """The training loss: binary cross-entropy (focal with `imbalance="focal"`) for the classifiers; the anomaly
    models' own score (`score_loss`)."""
    if model in ("autoencoder", "vae"):
        return score_loss
    if imbalance == "focal":
        return keras.losses.BinaryFocalCrossentropy(gamma=focal_gamma)
    return keras.losses.BinaryCrossentropy()


def scores(model, inputs, batch_size=4096):
    """The served scores (`fraud_score`) of numpy serving inputs, `[rows]` float32."""
    dataset = tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
    return np.concatenate([np.asarray(fraud_score(model(batch, training=False))) for batch in dataset])
