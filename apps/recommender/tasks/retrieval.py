"""Retrieval: user_id in, the top k movies (ids, titles, scores) of the whole catalogue out.

Training fits the two towers (`models.build_retrieval_model`) on (user, movie) pairs with an in-batch
softmax. `after_fit` runs the item tower once over the catalogue: that index of movie vectors is what
serving searches, by brute force (keras-rs `BruteForceRetrieval`), dropping the movies the user rated
in train. A user the model does not know gets the most popular movies (`known_user` is false).
"""

import keras
import keras_rs
import numpy as np
import tensorflow as tf

from apps.recommender import data as recommender_data
from apps.recommender import models, ranking
from apps.recommender.tasks.base import UNKNOWN_ID, MovieLensTask, sample_table
from apps.recommender import plots as recommender_plots
from shared import data as shared_data
from shared.app import Data, Endpoint, Report
from shared.optimizers import build_optimizer


class RetrievalTask(MovieLensTask):
    name = "retrieval"
    monitor = "val_ndcg_at_10"  # of the whole catalogue, as served (`ValidationRanking`); not the in-batch loss
    monitor_mode = "max"

    # === Inputs ===

    def build_data(self, config, source):
        split = self.load_split(config, source)
        info = recommender_data.base_info(split)
        info.update(retrieval_info(split, info))
        info["relevant_per_user"] = {name: relevant_per_user(part.users) for name, part in
                                     (("validation", split.validation), ("test", split.test))}
        train = recommender_data.dataset(recommender_data.inputs_of(split.train), None, config.batch_size,
                                         shuffle=True, seed=config.seed, batch_map_fn=_diagonal_targets)
        validation = None
        if len(split.validation):
            validation = recommender_data.dataset(recommender_data.inputs_of(split.validation), None,
                                                  config.batch_size, batch_map_fn=_diagonal_targets)
        return Data(train=train, validation=validation, test=recommender_data.test_data(split),
                    records=recommender_data.records(split, source.uri), info=info)

    # === Model ===

    def build_model(self, config, data):
        model = models.build_retrieval_model(
            data.info, embedding_dim=config.embedding_dim, hidden_units=config.hidden_units,
            activation=config.activation, dropout_rate=config.dropout_rate, l2=config.l2,
            use_features=config.use_features, use_history=config.use_history,
            history_dropout_rate=config.history_dropout_rate, temperature=config.temperature,
            logq_strength=config.logq_strength)
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    def metric_callbacks(self, config, data):
        """`val_ndcg_at_10` and `val_recall_at_10` of the whole catalogue for the validation users, each epoch."""
        return [ValidationRanking(data.info)] if data.validation is not None else []

    def after_fit(self, model, data, config):
        """The candidate index: the item tower's vector of every movie in the vocabulary (row i: index i + 1)."""
        indices = np.arange(1, len(data.info["item_ids"]) + 1, dtype=np.int64)
        vectors = model.get_layer("item_tower").predict({"exclude": np.zeros_like(indices), "index": indices},
                                                        batch_size=4096, verbose=0)
        return {"candidate_embeddings": vectors.astype(np.float32)}

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        user_lookup, user_tower = model.get_layer("user_lookup"), model.get_layer("user_tower")
        candidates = info["candidate_embeddings"]
        rated = recommender_data.history_table({**info, "history_users": info["seen_users"],
                                                "history_items": info["seen_items"]}) > 0
        # A catalogue smaller than k gives shorter lists. Fetching k + the most any user rated keeps k unrated
        # movies for everyone (a user who rated nearly everything gets rated movies at the end of the list).
        top_k, curve_k = min(config.top_k, len(candidates)), min(config.curve_k, len(candidates))
        fetch = min(len(candidates), curve_k + int(rated.sum(axis=1).max()))
        retrieval = keras_rs.layers.BruteForceRetrieval(candidate_embeddings=candidates,
                                                        candidate_ids=np.arange(1, len(candidates) + 1),
                                                        k=fetch, dtype="float32", name="retrieval")
        item_ids = np.r_[0, info["item_ids"]].astype(np.int64)
        titles = np.array([b""] + [str(title).encode("utf-8") for title in info["item_titles"]], dtype=object)
        popular, popular_scores = info["popular_items"], info["popular_scores"]

        def recommend(user_id, k):
            index = user_lookup(user_id)
            query = user_tower({"exclude": tf.zeros_like(index), "index": index})
            scores, found = retrieval(query)
            already = tf.gather(tf.gather(tf.constant(rated), index), found, batch_dims=1)
            order = tf.argsort(tf.cast(already, tf.int32), axis=1, stable=True)[:, :k]  # unrated first, by score
            found, scores = tf.gather(found, order, batch_dims=1), tf.gather(scores, order, batch_dims=1)
            known = index > 0
            found = tf.where(known[:, None], tf.cast(found, tf.int64), tf.constant(popular[None, :k], tf.int64))
            scores = tf.where(known[:, None], scores, tf.constant(popular_scores[None, :k], tf.float32))
            return {"item_ids": tf.gather(tf.constant(item_ids), found),
                    "titles": tf.gather(tf.constant(titles), found), "scores": scores, "known_user": known}

        signature = [tf.TensorSpec([None], tf.int64, name="user_id")]
        return {"serving_default": Endpoint(lambda user_id: recommend(user_id, top_k), signature),
                "ranking": Endpoint(lambda user_id: recommend(user_id, curve_k), signature)}

    def example_inputs(self, data):
        return {"user_id": np.r_[np.unique(data.test.user_ids)[:6], UNKNOWN_ID].astype(np.int64)}

    def signature_examples(self, data):
        example = self.example_inputs(data)
        return {"serving_default": example, "ranking": example}

    def evaluate(self, serving, data, config):
        test = data.test
        users = np.unique(test.user_ids)
        relevant = ranking.relevant_sets(test.user_ids, test.item_ids)
        served = serving.batched(256, signature="ranking", user_id=users.astype(np.int64))
        candidates = len(np.unique(test.known.items))
        depth = served["item_ids"].shape[1]  # curve_k, or the catalogue when it is smaller
        top_k = min(config.top_k, depth)
        metrics, curves = ranking.report(users, served["item_ids"], relevant, top_k, candidates, "test_")
        popular, popular_candidates = ranking.most_popular(users, test.known, depth)
        popular_metrics, popular_curves = ranking.report(users, popular, relevant, top_k, popular_candidates,
                                                         "test_popular_")
        metrics.update(popular_metrics)
        metrics["test_known_user_fraction"] = float(served["known_user"].mean())
        metrics["test_relevant_per_user"] = relevant_per_user(test.user_ids)
        sample = np.arange(min(config.num_sample_users, len(users)))
        tables = {"ranking_curves.json": {"k": list(range(1, depth + 1)),
                                          **{f"two_tower_{key}": value for key, value in curves.items()},
                                          **{f"most_popular_{key}": value for key, value in popular_curves.items()}}}
        if len(sample):
            tables["sample_top10.json"] = sample_table(test, users[sample], served["item_ids"][sample, :top_k],
                                                       served["scores"][sample, :top_k])
        figure = recommender_plots.ranking_curves({"two towers": curves, "most popular": popular_curves})
        return Report(metrics=metrics, figures={"ranking_curves.png": figure}, tables=tables)


def relevant_per_user(user_ids):
    """The mean number of held-out movies of a user who has any: what NDCG@k and Recall@k are relative to."""
    return float(np.unique(user_ids, return_counts=True)[1].mean()) if len(user_ids) else 0.0


def scale_note(relevant):
    """Why `val_ndcg_at_10` and `test_ndcg_at_10` are on different scales, with this run's numbers (a run tag)."""
    return (f"val_ndcg_at_10 ranks the catalogue for the validation users against their validation movies (a "
            f"random slice of the training ratings: {relevant['validation']:.1f} per user on average); "
            f"test_ndcg_at_10 against their test movies ({relevant['test']:.1f} per user). NDCG@10 rises with the "
            "number of relevant movies, so compare each with its most-popular baseline (val_popular_ndcg_at_10, "
            "test_popular_ndcg_at_10), not with each other.")


class ValidationRanking(keras.callbacks.Callback):
    """After each epoch, rank the whole catalogue for the validation users as serving does (cosine of the two
    towers, the movies of the fitted data excluded) and add `val_recall_at_{k}` and `val_ndcg_at_{k}` to the logs,
    beside the most-popular baseline ranked the same way (`val_popular_recall_at_{k}`, `val_popular_ndcg_at_{k}`,
    the same every epoch).

    The in-batch validation loss is a poor guide to that ranking (its minimum came anywhere from epoch 4 to 16
    for the same preset); early stopping watches `val_ndcg_at_{k}` instead. Validation users hold out a few
    movies each, test users many more: the two NDCGs are on different scales (`scale_note`, set as the run's
    tag `dlsuite.ndcg_scales`); each baseline is the yardstick on its side.
    """

    def __init__(self, info, k=10):
        super().__init__()
        self.k = k
        self.users = np.unique(info["validation_users"])
        self.relevant = ranking.relevant_sets(info["validation_users"], info["validation_items"])
        self.rated = recommender_data.history_table(info) > 0
        self.note = scale_note(info["relevant_per_user"]) if "relevant_per_user" in info else None
        counts = np.bincount(info["history_items"], minlength=self.rated.shape[1]).astype(np.float64)[1:]
        popularity = np.broadcast_to(counts - np.arange(len(counts)) * 1e-6, (len(self.users), len(counts)))
        popular = ranking.top_k_excluding(popularity, self.rated[self.users][:, 1:], self.k) + 1  # ties: lower id
        depth = min(self.k, popular.shape[1])  # a catalogue smaller than k
        self.popular_metrics, _curves = ranking.report(self.users, popular, self.relevant, depth, len(counts), "")

    def on_train_begin(self, logs=None):
        import mlflow

        if self.note and mlflow.active_run() is not None:
            mlflow.set_tag("dlsuite.ndcg_scales", self.note)

    def on_epoch_end(self, epoch, logs=None):
        indices = np.arange(1, self.rated.shape[1], dtype=np.int64)
        items = self.model.get_layer("item_tower").predict({"exclude": np.zeros_like(indices), "index": indices},
                                                           batch_size=4096, verbose=0)
        users = self.model.get_layer("user_tower").predict(
            {"exclude": np.zeros_like(self.users), "index": self.users}, batch_size=4096, verbose=0)
        top = ranking.top_k_excluding(users @ items.T, self.rated[self.users][:, 1:], self.k) + 1
        depth = min(self.k, top.shape[1])  # a catalogue smaller than k
        metrics, _curves = ranking.report(self.users, top, self.relevant, depth, len(indices), "")
        if logs is not None:
            logs[f"val_recall_at_{self.k}"] = metrics[f"recall_at_{depth}"]
            logs[f"val_ndcg_at_{self.k}"] = metrics[f"ndcg_at_{depth}"]
            logs[f"val_popular_recall_at_{self.k}"] = self.popular_metrics[f"recall_at_{depth}"]
            logs[f"val_popular_ndcg_at_{self.k}"] = self.popular_metrics[f"ndcg_at_{depth}"]


def _diagonal_targets(inputs):
    """In-batch softmax targets: row i's positive is column i."""
    return inputs, tf.range(tf.shape(inputs["user_id"])[0])


def retrieval_info(split, info):
    """What retrieval serving needs from the data: titles, sampling probabilities, rated pairs, popular movies."""
    known = split.known
    item_ids = info["item_ids"]
    counts = np.bincount(info["history_items"], minlength=len(item_ids) + 1).astype(np.float64)
    users, items = (recommender_data.index_of(info[name], getattr(known, field))
                    for name, field in (("user_ids", "users"), ("item_ids", "items")))
    inside = (users > 0) & (items > 0)
    validation_users, validation_items = (recommender_data.index_of(info[name], getattr(split.validation, field))
                                          for name, field in (("user_ids", "users"), ("item_ids", "items")))
    validation_inside = (validation_users > 0) & (validation_items > 0)
    popularity = np.bincount(items[items > 0], minlength=len(item_ids) + 1).astype(np.float64)
    popularity[0] = -1.0
    popular = np.argsort(-popularity, kind="stable")[:min(len(item_ids), 1000)]
    return {
        "item_titles": recommender_data.titles_of(split.catalogue, item_ids),
        "item_probability": (counts / counts.sum()).astype(np.float32),
        "seen_users": users[inside], "seen_items": items[inside],
        "popular_items": popular.astype(np.int64),
        # The validation pairs as lookup indices (only those the vocabularies know): `ValidationRanking`.
        "validation_users": validation_users[validation_inside],
        "validation_items": validation_items[validation_inside],
        "popular_scores": (popularity[popular] / max(len(np.unique(known.users)), 1)).astype(np.float32),
    }
