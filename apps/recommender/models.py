"""The recommender models: a rating model (MF or NCF-style hybrid) and a two-tower retrieval model.

Both take raw MovieLens ids (`{"item_id", "user_id"}`, int64) and map them with
`keras.layers.IntegerLookup` (index 0: users and movies not in the training data). Content and the
movies each user rated live in the model as frozen tables indexed the same way, so the model (and
the export) needs nothing but ids. An unknown id has no factors: the rating model answers from the
biases it does know (the global mean, plus the item's bias for an unknown user or the user's for
an unknown movie).
"""

import keras
import keras_rs
import numpy as np

from apps.recommender import data as recommender_data
from shared.layers import dense_block, regularizer

# === Shared pieces ===


def id_inputs(names=("item_id", "user_id")):
    return {name: keras.Input(shape=(), dtype="int64", name=name) for name in names}


def lookup(vocabulary, name):
    """Raw ids -> 1 + position in `vocabulary`; 0 for any id not in it (the out-of-vocabulary bucket)."""
    return keras.layers.IntegerLookup(vocabulary=np.asarray(vocabulary, np.int64), num_oov_indices=1,
                                      output_mode="int", name=name)


def frozen_table(array, name):
    """A non-trainable Embedding holding `array` (rows indexed like the lookups; weights set by `fill_tables`)."""
    return keras.layers.Embedding(array.shape[0], array.shape[1], trainable=False, name=name)


def fill_tables(model, tables):
    """Set each frozen table's weights (`{layer name: array}`, in the model or its towers); a reloaded model
    has them from its file."""
    for name, array in tables.items():
        find_layer(model, name).set_weights([np.asarray(array, np.float32)])


def find_layer(model, name):
    """The layer called `name` in `model` or in a model nested in it."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            found = find_layer(layer, name)
            if found is not None:
                return found
    return None


def embedding(count, dim, l2, name, initializer="random_normal"):
    """An embedding whose looked-up rows are L2-regularized per example (Keras divides by the batch size). Float32
    under a mixed policy: a lookup gains nothing from 16 bits, and Keras sums the activity penalty with the float32
    losses without casting it."""
    return keras.layers.Embedding(count, dim, embeddings_initializer=initializer,
                                  activity_regularizer=regularizer(l2=l2), dtype="float32", name=name)


def neighbourhood(index, other_index, rated, ratings=None):
    """A user's rated movies (or a movie's raters) as rows `[batch, others + 1]` averaging to one vector.

    `rated`: the frozen 0/1 table of the fitted data; `ratings` (optional): the frozen table of those
    ratings minus the global mean. Training pairs come from that data, so the pair's own entry is removed
    (`other_index`): the model learns to score a pair from the user's other movies and the movie's other
    raters, as it must at test time, and never sees the rating it predicts. `other_index` None: nothing
    to remove (serving a user before any movie). Returns `(rows, log(1 + count))`; with `ratings`, the
    rows are the 0/1 row and the centered ratings side by side, each divided by the count.
    """
    rows = [rated(index)] + ([ratings(index)] if ratings is not None else [])
    if other_index is not None:
        keep = 1.0 - keras.ops.one_hot(other_index, rated.output_dim)
        rows = [row * keep for row in rows]
    count = keras.ops.sum(rows[0], axis=-1, keepdims=True)
    rows = [row / keras.ops.maximum(count, 1.0) for row in rows]
    return (rows[0] if len(rows) == 1 else keras.ops.concatenate(rows, axis=-1)), keras.ops.log1p(count)


# === Rating: global mean + biases + interaction ===


def build_rating_model(info, *, model="mf", embedding_dim=32, l2=0.0, bias_l2=None, use_history=False, history_l2=0.0,
                       use_features=True, hidden_units=(64, 32), activation="relu", dropout_rate=0.0):
    """`{"item_id", "user_id"}` -> predicted rating (float32 [batch], not clipped: the endpoint clips).

    `model`: "mf" (the interaction is the dot product of the factors) or "hybrid" (NeuMF with content:
    `use_features`, `hidden_units`); `use_history`: SVD++'s implicit factors. `bias_l2` None: `l2`."""
    num_users, num_items = len(info["user_ids"]) + 1, len(info["item_ids"]) + 1
    inputs = id_inputs()
    user_index = lookup(info["user_ids"], "user_lookup")(inputs["user_id"])
    item_index = lookup(info["item_ids"], "item_lookup")(inputs["item_id"])
    known_user = keras.ops.cast(user_index > 0, "float32")
    known_item = keras.ops.cast(item_index > 0, "float32")
    bias_l2 = l2 if bias_l2 is None else bias_l2
    tables = rating_tables(info, model=model, use_features=use_features, use_history=use_history)
    user_bias = embedding(num_users, 1, bias_l2, "user_bias", "zeros")(user_index)[:, 0]
    item_bias = embedding(num_items, 1, bias_l2, "item_bias", "zeros")(item_index)[:, 0]
    user_factors = embedding(num_users, embedding_dim, l2, "user_factors")(user_index)
    item_factors = embedding(num_items, embedding_dim, l2, "item_factors")(item_index)
    extra = []
    if use_history:  # SVD++ / asymmetric SVD: the user is also their other movies, the movie its raters
        user_rows, user_count = neighbourhood(user_index, item_index, frozen_table(tables["user_rated"], "user_rated"),
                                              frozen_table(tables["user_ratings"], "user_ratings"))
        item_rows, item_count = neighbourhood(item_index, user_index, frozen_table(tables["item_rated"], "item_rated"),
                                              frozen_table(tables["item_ratings"], "item_ratings"))
        if dropout_rate:
            user_rows = keras.layers.Dropout(dropout_rate, name="user_history_dropout")(user_rows)
            item_rows = keras.layers.Dropout(dropout_rate, name="item_history_dropout")(item_rows)
        user_implicit = keras.layers.Dense(embedding_dim, use_bias=False, name="user_history_factors",
                                           kernel_regularizer=regularizer(l2=history_l2))(user_rows)
        item_implicit = keras.layers.Dense(embedding_dim, use_bias=False, name="item_history_factors",
                                           kernel_regularizer=regularizer(l2=history_l2))(item_rows)
        user_factors = user_factors + user_implicit
        item_factors = item_factors + item_implicit
        extra = [user_implicit, item_implicit, user_count / 5.0, item_count / 5.0]
    if model == "mf":
        interaction = keras.ops.sum(user_factors * item_factors, axis=-1)
    else:
        interaction = _hybrid_interaction(info, user_index, item_index, user_factors * item_factors, extra,
                                          embedding_dim=embedding_dim, l2=l2, use_features=use_features,
                                          hidden_units=hidden_units, activation=activation,
                                          dropout_rate=dropout_rate)
    # Unknown ids fall back to what is known: an unknown user gets mean + item bias, and so on.
    rating = (info["global_mean"] + known_user * user_bias + known_item * item_bias
              + known_user * known_item * interaction)
    rating_model = keras.Model(inputs, rating, name=f"rating_{model}")
    fill_tables(rating_model, tables)
    return rating_model


def rating_tables(info, *, model, use_features, use_history):
    """The frozen tables the rating model reads, by layer name."""
    tables = {}
    if model == "hybrid" and use_features:
        tables["item_content"] = info["item_content"]
        if "user_content" in info:
            tables["user_content"] = info["user_content"]
    if use_history:
        rated = recommender_data.history_table(info)
        ratings = recommender_data.history_table(info, values=info["history_ratings"] - info["global_mean"])
        tables.update(user_rated=rated, user_ratings=ratings, item_rated=rated.T, item_ratings=ratings.T)
    return tables


def _hybrid_interaction(info, user_index, item_index, gmf, extra, *, embedding_dim, l2, use_features, hidden_units,
                        activation, dropout_rate):
    """NeuMF (He et al. 2017) with content: the GMF vector (user factors * item factors) beside an MLP over
    separate id embeddings, the movie's genres and year, the user's age, gender and occupation, and the
    `extra` inputs (the history factors and counts), joined by one linear unit."""
    num_users, num_items = len(info["user_ids"]) + 1, len(info["item_ids"]) + 1
    parts = [embedding(num_users, embedding_dim, l2, "user_mlp_embedding")(user_index),
             embedding(num_items, embedding_dim, l2, "item_mlp_embedding")(item_index)]
    if use_features:
        parts.append(frozen_table(info["item_content"], "item_content")(item_index))
        if "user_content" in info:
            parts.append(frozen_table(info["user_content"], "user_content")(user_index))
    parts.extend(extra)
    hidden = keras.layers.Concatenate(name="mlp_inputs")(parts)
    if dropout_rate:
        hidden = keras.layers.Dropout(dropout_rate, name="mlp_inputs_dropout")(hidden)
    for number, units in enumerate(hidden_units):
        hidden = dense_block(hidden, units, activation, dropout_rate, l2=l2, name=f"mlp_{number}")
    joined = keras.layers.Concatenate(name="neumf")([gmf, hidden])
    return keras.layers.Dense(1, dtype="float32", name="interaction")(joined)[:, 0]


# === Retrieval: two towers, in-batch softmax ===


def build_retrieval_model(info, *, embedding_dim=32, hidden_units=(64, 32), activation="relu", dropout_rate=0.0,
                          l2=0.0, use_features=True, use_history=True, history_dropout_rate=0.0, temperature=0.1,
                          logq_strength=1.0):
    """`{"item_id", "user_id"}` pairs -> in-batch logits `[batch, batch]` (row: a user, column: a batch movie).

    The user tower reads the user's id, features and the movies they rated (minus the pair's own); the item
    tower the movie's id, content and its raters (minus the pair's user). Both end in an L2-normalized
    vector; logits are cosines over `temperature`, corrected for how often each movie appears as an
    in-batch negative (keras-rs SamplingProbabilityCorrection, logQ: minus `logq_strength` times the log
    of the movie's share of the training pairs) and with repeats of the positive movie removed (keras-rs
    RemoveAccidentalHits). Targets: the diagonal (`tf.range(batch)`).
    """
    inputs = id_inputs()
    user_index = lookup(info["user_ids"], "user_lookup")(inputs["user_id"])
    item_index = lookup(info["item_ids"], "item_lookup")(inputs["item_id"])
    tower = {"embedding_dim": embedding_dim, "hidden_units": hidden_units, "activation": activation,
             "dropout_rate": dropout_rate, "l2": l2, "use_features": use_features, "use_history": use_history,
             "history_dropout_rate": history_dropout_rate}
    user_tower, item_tower = build_tower(info, "user", **tower), build_tower(info, "item", **tower)
    queries = user_tower({"index": user_index, "exclude": item_index})
    candidates = item_tower({"index": item_index, "exclude": user_index})
    logits = keras.ops.matmul(queries, keras.ops.transpose(candidates)) / temperature
    if logq_strength:
        probability = frozen_table(info["item_probability"][:, None], "item_probability")(item_index)[:, 0]
        logits = keras_rs.layers.SamplingProbabilityCorrection(name="logq_correction")(logits, probability)
    rows = keras.ops.cumsum(keras.ops.ones_like(item_index)) - 1  # 0..batch-1, also while tracing
    diagonal = keras.ops.cast(keras.ops.equal(rows[:, None], rows[None, :]), "float32")
    logits = keras_rs.layers.RemoveAccidentalHits(name="remove_accidental_hits")(logits, diagonal, item_index)
    model = keras.Model(inputs, logits, name="two_tower_retrieval")
    tables = retrieval_tables(info, logq_strength=logq_strength, use_features=use_features, use_history=use_history)
    tables = {name: table for name, table in tables.items() if name != "item_probability" or logq_strength}
    fill_tables(model, tables)
    return model


def retrieval_tables(info, *, logq_strength, use_features, use_history):
    # p ** strength: the correction subtracts strength * log p (keras-rs subtracts log of what it is given).
    tables = {"item_probability": info["item_probability"][:, None] ** logq_strength}
    if use_features:
        tables["item_content"] = info["item_content"]
        if "user_content" in info:
            tables["user_content"] = info["user_content"]
    if use_history:
        tables["user_rated"] = recommender_data.history_table(info)
    return tables


def build_tower(info, side, *, embedding_dim=32, hidden_units=(64, 32), activation="relu", dropout_rate=0.0, l2=0.0,
                use_features=True, use_history=True, history_dropout_rate=0.0):
    """One tower, a functional model `{"index", "exclude"}` -> unit vector `[batch, embedding_dim]`.

    `index`: the user's (or movie's) lookup index; `exclude`: the lookup index of the movie (or user) to
    leave out of its history, 0 when there is none (index 0 is the out-of-vocabulary row, never rated).
    """
    count = len(info[f"{side}_ids"]) + 1
    inputs = {"exclude": keras.Input((), dtype="int64", name="exclude"),
              "index": keras.Input((), dtype="int64", name="index")}
    parts = [embedding(count, embedding_dim, l2, f"{side}_embedding")(inputs["index"])]
    if use_features and f"{side}_content" in info:
        parts.append(frozen_table(info[f"{side}_content"], f"{side}_content")(inputs["index"]))
    if side == "user" and use_history:
        rows, rated_count = neighbourhood(inputs["index"], inputs["exclude"],
                                          frozen_table(np.zeros((count, len(info["item_ids"]) + 1)), "user_rated"))
        if history_dropout_rate:
            rows = keras.layers.Dropout(history_dropout_rate, name=f"{side}_history_dropout")(rows)
        parts += [keras.layers.Dense(embedding_dim, use_bias=False, name=f"{side}_history_factors")(rows),
                  rated_count / 5.0]
    hidden = keras.layers.Concatenate(name=f"{side}_features")(parts) if len(parts) > 1 else parts[0]
    for number, units in enumerate(hidden_units):
        hidden = dense_block(hidden, units, activation, dropout_rate, l2=l2, name=f"{side}_hidden_{number}")
    vector = keras.layers.Dense(embedding_dim, dtype="float32", name=f"{side}_output")(hidden)
    vector = keras.layers.UnitNormalization(dtype="float32", name=f"{side}_normalize")(vector)
    return keras.Model(inputs, vector, name=f"{side}_tower")
