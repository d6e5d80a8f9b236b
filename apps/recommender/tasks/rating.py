"""Rating prediction: user_id and item_id in, the predicted rating (clipped to the rating range) out.

The model (`models.build_rating_model`) takes raw ids; serving adds the clip and says whether it
knew the user and the movie (`known_user`, `known_item`): an unknown id is answered from the biases
the model does know (the global mean, the movie's or the user's), never with an error.
"""

import keras
import numpy as np
import tensorflow as tf

from apps.recommender import data as recommender_data
from apps.recommender import models, ranking
from apps.recommender.tasks.base import UNKNOWN_ID, MovieLensTask, sample_table
from apps.recommender import plots as recommender_plots
from shared import data as shared_data
from shared.app import Data, Endpoint, Report
from shared.optimizers import build_optimizer

RANKING_DEPTH = 50  # Recall@k and NDCG@k curves for k = 1..50 when the split is per_user


class RatingTask(MovieLensTask):
    name = "rating"
    monitor = "val_rmse"
    monitor_mode = "min"

    # === Inputs ===

    def build_data(self, config, source):
        split = self.load_split(config, source)
        train = recommender_data.dataset(recommender_data.inputs_of(split.train), split.train.ratings,
                                         config.batch_size, shuffle=True, seed=config.seed)
        validation = None
        if len(split.validation):
            validation = recommender_data.dataset(recommender_data.inputs_of(split.validation),
                                                  split.validation.ratings, 4096)
        return Data(train=train, validation=validation, test=recommender_data.test_data(split),
                    records=recommender_data.records(split, source.uri), info=recommender_data.base_info(split))

    # === Model ===

    def build_model(self, config, data):
        model = models.build_rating_model(
            data.info, model=config.model, embedding_dim=config.embedding_dim, l2=config.l2, bias_l2=config.bias_l2,
            use_history=config.use_history, history_l2=config.history_l2, use_features=config.use_features,
            hidden_units=config.hidden_units, activation=config.activation, dropout_rate=config.dropout_rate)
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)), loss="mse",
                      metrics=[keras.metrics.RootMeanSquaredError(name="rmse"),
                               keras.metrics.MeanAbsoluteError(name="mae")])
        return model

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        low, high = info["rating_range"]
        user_lookup, item_lookup = model.get_layer("user_lookup"), model.get_layer("item_lookup")

        def serve(user_id, item_id):
            rating = model({"item_id": item_id, "user_id": user_id}, training=False)
            return {"rating": tf.clip_by_value(rating, low, high),
                    "known_user": user_lookup(user_id) > 0, "known_item": item_lookup(item_id) > 0}

        signature = [tf.TensorSpec([None], tf.int64, name="user_id"), tf.TensorSpec([None], tf.int64, name="item_id")]
        return {"serving_default": Endpoint(serve, signature)}

    def example_inputs(self, data):
        """Eight test pairs, then an unknown user, an unknown movie and both unknown."""
        test = data.test
        users = np.r_[test.user_ids[:8], UNKNOWN_ID, test.user_ids[0], UNKNOWN_ID].astype(np.int64)
        items = np.r_[test.item_ids[:8], test.item_ids[0], UNKNOWN_ID, UNKNOWN_ID].astype(np.int64)
        return {"user_id": users, "item_id": items}

    def evaluate(self, serving, data, config):
        test = data.test
        outputs = serving.batched(8192, user_id=test.user_ids, item_id=test.item_ids)
        errors = outputs["rating"] - test.ratings
        mean_errors = test.known.ratings.mean() - test.ratings
        metrics = {
            "test_rmse": float(np.sqrt(np.mean(np.square(errors)))),
            "test_mae": float(np.mean(np.abs(errors))),
            "test_rmse_global_mean": float(np.sqrt(np.mean(np.square(mean_errors)))),  # the baseline to beat
            "test_known_pair_fraction": float(np.mean(outputs["known_user"] & outputs["known_item"])),
        }
        low, high = data.info.get("rating_range", (float(test.ratings.min()), float(test.ratings.max())))
        values = np.arange(low, high + 0.25, 1.0 if low == 1.0 else 0.5)
        figures = {"error_histogram.png": recommender_plots.error_histogram(errors),
                   "predicted_vs_true.png": recommender_plots.predicted_vs_true(test.ratings, outputs["rating"],
                                                                               values)}
        tables = {}
        candidates, users = np.unique(test.known.items), np.unique(test.user_ids)
        depth = min(RANKING_DEPTH, len(candidates))
        if config.split == "per_user":  # the retrieval protocol's split: rank every unrated movie by predicted rating
            recommended = self.rank(serving, users, candidates, test.known, depth)
            relevant = ranking.relevant_sets(test.user_ids, test.item_ids)
            ranked, curves = ranking.report(users, recommended, relevant, min(10, depth), len(candidates), "test_")
            metrics.update(ranked)
            figures["ranking_curves.png"] = recommender_plots.ranking_curves({"rating model": curves})
            tables["ranking_curves.json"] = {"k": list(range(1, depth + 1)), **curves}
        if config.num_sample_users:
            sample = users[:config.num_sample_users]
            tables["sample_top10.json"] = sample_table(test, sample, self.rank(serving, sample, candidates, test.known,
                                                                                  min(10, depth)))
        return Report(metrics=metrics, figures=figures, tables=tables)

    @staticmethod
    def rank(serving, users, candidates, known, k, batch_users=64):
        """Each user's top k candidates by predicted rating, excluding the movies they rated in `known`."""
        rows = []
        for start in range(0, len(users), batch_users):
            chunk = users[start:start + batch_users]
            pairs_users = np.repeat(chunk, len(candidates)).astype(np.int64)
            pairs_items = np.tile(candidates, len(chunk)).astype(np.int64)
            scores = serving.batched(16384, user_id=pairs_users, item_id=pairs_items)["rating"]
            seen = ranking.known_matrix(chunk, known.users, known.items, candidates)
            # Clipping makes ties at the top of the range; the unclipped order would need the raw model.
            rows.append(candidates[ranking.top_k_excluding(scores.reshape(len(chunk), -1), seen, k)])
        return np.concatenate(rows)

