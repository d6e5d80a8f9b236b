"""The rating task on tiny MovieLens data whose ratings follow taste: it learns, unknown ids get a defined answer."""

import numpy as np
import pytest

from tests.recommender.fit import fit
from tests.tiny_data import make_movielens_folder

UNKNOWN = 10**9
LEARN = ("epochs=30", "batch_size=64", "learning_rate=0.01")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_movielens_folder(tmp_path_factory.mktemp("movielens") / "ml-100k")


@pytest.fixture(scope="module")
def mf(folder, tmp_path_factory):
    return fit("rating", folder, tmp_path_factory.mktemp("mf"), overrides=(*LEARN, "use_history=false"))


@pytest.mark.parametrize("preset", ["smoke", "hybrid_smoke"])
def test_rating_models_learn_taste_far_better_than_the_mean(folder, tmp_path, preset):
    """Liked movies get 4-5 stars, the others 1-2: predicting the mean is off by about 1.6."""
    fitted = fit("rating", folder, tmp_path, preset=preset, overrides=LEARN)
    test = fitted.data.test
    baseline = np.sqrt(np.mean(np.square(test.known.ratings.mean() - test.ratings)))  # computed here, not by the app
    predicted = fitted.serving(user_id=test.user_ids, item_id=test.item_ids)["rating"]
    rmse = float(np.sqrt(np.mean(np.square(predicted - test.ratings))))
    assert rmse < 0.6 * baseline, (rmse, baseline)
    assert fitted.report.metrics["test_rmse"] == pytest.approx(rmse, abs=1e-5)
    assert {"error_histogram.png", "predicted_vs_true.png"} <= set(fitted.report.figures)
    assert len(set(fitted.report.tables["sample_top10.json"]["user_id"])) == fitted.config.num_sample_users


def test_unknown_ids_fall_back_to_what_the_model_knows(mf):
    info, serving = mf.data.info, mf.serving
    user, item = int(info["user_ids"][0]), int(info["item_ids"][0])
    out = serving(user_id=np.array([user, UNKNOWN, user, UNKNOWN]), item_id=np.array([item, item, UNKNOWN, UNKNOWN]))
    np.testing.assert_array_equal(out["known_user"], [True, False, True, False])
    np.testing.assert_array_equal(out["known_item"], [True, True, False, False])
    model = mf.model
    item_bias = model.get_layer("item_bias").get_weights()[0][1, 0]  # lookup index 1: the first vocabulary id
    user_bias = model.get_layer("user_bias").get_weights()[0][1, 0]
    expected = np.clip([info["global_mean"] + item_bias, info["global_mean"] + user_bias, info["global_mean"]],
                       *info["rating_range"])
    np.testing.assert_allclose(out["rating"][1:], expected, atol=1e-5)


def test_ratings_are_clipped_to_the_rating_range(mf):
    test = mf.data.test
    users = np.repeat(mf.data.info["user_ids"], len(mf.data.info["item_ids"]))
    items = np.tile(mf.data.info["item_ids"], len(mf.data.info["user_ids"]))
    ratings = mf.serving.batched(4096, user_id=users, item_id=items)["rating"]
    raw = mf.model.predict({"item_id": items, "user_id": users}, batch_size=4096, verbose=0)
    assert ratings.min() >= 1.0 and ratings.max() <= 5.0 and (raw > 5.0).any()  # the taste pushes some past 5
    assert test.ratings.min() >= 1.0


def test_per_user_split_adds_ranking_metrics_by_predicted_rating(folder, tmp_path):
    fitted = fit("rating", folder, tmp_path, overrides=(*LEARN, "use_history=false", "split=per_user",
                                                         "test_fraction=0.25"))
    metrics = fitted.report.metrics
    # Taste decides what a user rates and how high: ranking by predicted rating beats chance by far.
    chance = 0.25 * 0.8 * 15 / 45  # roughly: a quarter of liked movies are in test, a third of movies are liked
    assert metrics["test_precision_at_10"] > 2 * chance, metrics
    assert {"test_recall_at_10", "test_ndcg_at_10", "test_map_at_10", "test_coverage_at_10"} <= set(metrics)
    assert len(fitted.report.tables["ranking_curves.json"]["ndcg"]) == 45  # k = 1..50, capped by the 45 movies
