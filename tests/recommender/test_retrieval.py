"""The retrieval task on tiny MovieLens data where taste decides what users rate: it learns, excludes what a user
rated, and answers a user it does not know with the most popular movies."""

import numpy as np
import pytest

from apps.recommender import ranking
from tests.recommender.fit import fit
from tests.tiny_data import make_movielens_folder

UNKNOWN = 10**9


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    folder = make_movielens_folder(tmp_path_factory.mktemp("movielens") / "ml-100k")
    return fit("retrieval", folder, tmp_path_factory.mktemp("towers"),
               overrides=("epochs=15", "batch_size=64", "learning_rate=0.01", "split_seed=1"))


def test_two_towers_learn_taste_and_beat_most_popular(towers):
    test = towers.data.test
    users = np.unique(test.user_ids)
    served = towers.serving(user_id=users)["item_ids"]
    relevant = ranking.relevant_sets(test.user_ids, test.item_ids)
    # Precision@10 computed here: a third of the movies match a user's taste and most test movies do.
    precision = np.mean([len(set(row[:10].tolist()) & relevant[user]) / 10 for user, row in zip(users, served)])
    popular = np.mean([len(set(row.tolist()) & relevant[user]) / 10
                       for user, row in zip(users, ranking.most_popular(users, test.known, 10)[0])])
    assert precision > popular + 0.1, (precision, popular)
    metrics = towers.report.metrics
    assert metrics["test_precision_at_10"] == pytest.approx(precision, abs=1e-6)
    assert metrics["test_ndcg_at_10"] > metrics["test_popular_ndcg_at_10"] + 0.1, metrics


def test_serving_leaves_out_what_the_user_rated_in_train(towers):
    test = towers.data.test
    users = np.unique(test.user_ids)
    served = towers.serving["ranking"](user_id=users)
    for user, row in zip(users, served["item_ids"]):
        rated = set(test.known.items[test.known.users == user].tolist())
        unrated_count = len(set(towers.data.info["item_ids"].tolist()) - rated)
        assert not set(row[:unrated_count].tolist()) & rated  # only a list longer than the unrated fills with rated
        assert len(set(row.tolist())) == len(row)
    assert served["item_ids"].shape[1] == len(towers.data.info["item_ids"])  # curve_k=50 capped by the catalogue
    assert np.all(np.diff(served["scores"][:, :10], axis=1) <= 1e-6)  # best first


def test_an_unknown_user_gets_the_most_popular_movies_with_titles(towers):
    test = towers.data.test
    out = towers.serving(user_id=np.array([UNKNOWN, test.user_ids[0]]))
    np.testing.assert_array_equal(out["known_user"], [False, True])
    items, counts = np.unique(test.known.items, return_counts=True)
    expected = items[np.argsort(-counts, kind="stable")][:10]
    np.testing.assert_array_equal(out["item_ids"][0], expected)
    assert out["titles"][0][0].decode() == test.title_of(expected[:1])[0]
    assert out["titles"].shape == out["item_ids"].shape == out["scores"].shape == (2, 10)


def test_the_run_logs_curves_against_the_baseline_and_sample_users(towers):
    report = towers.report
    assert "ranking_curves.png" in report.figures
    curves = report.tables["ranking_curves.json"]
    assert set(curves) == {"k", "two_tower_recall", "two_tower_ndcg", "most_popular_recall", "most_popular_ndcg"}
    assert curves["two_tower_recall"][-1] >= curves["two_tower_recall"][0]
    sample = report.tables["sample_top10.json"]
    assert len(sample["title"]) == 10 * towers.config.num_sample_users and all(sample["title"])


def test_validation_and_test_ndcg_come_with_their_scale_and_a_baseline_ranked_the_same_way(towers):
    """val_ndcg_at_10 and test_ndcg_at_10 rank the same way but against held-out sets of different sizes (a few
    validation movies per user, many test movies): the run records both sizes, explains them, and logs the
    most-popular baseline on each side, the baseline's validation value computed here independently."""
    from apps.recommender.tasks.retrieval import ValidationRanking

    info, test = towers.data.info, towers.data.test
    sizes = info["relevant_per_user"]
    validation_users = info["user_ids"][info["validation_users"] - 1]  # lookup indices -> raw ids
    validation_items = info["item_ids"][info["validation_items"] - 1]
    assert sizes["validation"] == pytest.approx(np.unique(validation_users, return_counts=True)[1].mean())
    assert sizes["test"] == pytest.approx(np.unique(test.user_ids, return_counts=True)[1].mean())
    assert towers.report.metrics["test_relevant_per_user"] == pytest.approx(sizes["test"])

    callback = ValidationRanking(info)
    callback.set_model(towers.model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert {"val_ndcg_at_10", "val_recall_at_10", "val_popular_ndcg_at_10", "val_popular_recall_at_10"} <= set(logs)
    users = np.unique(validation_users)
    # `known` is the fitted ratings, then the validation ones: the validation ranking excludes only the fitted part.
    fitted = test.known.take(np.arange(len(info["history_users"])))
    popular, candidates = ranking.most_popular(users, fitted, 10)
    expected, _curves = ranking.report(users, popular, ranking.relevant_sets(validation_users, validation_items), 10,
                                       candidates, "val_popular_")
    assert logs["val_popular_ndcg_at_10"] == pytest.approx(expected["val_popular_ndcg_at_10"])
    assert f"{sizes['validation']:.1f} per user" in callback.note and f"{sizes['test']:.1f} per user" in callback.note
