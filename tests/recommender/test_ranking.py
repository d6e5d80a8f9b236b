"""The ranking metrics against values worked out by hand, and the most-popular baseline."""

import numpy as np
import pytest

from apps.recommender import movielens, ranking


def test_metrics_match_hand_computed_values():
    # User 1: relevant {10, 30, 50}; ranked 10, 20, 30 -> hits at ranks 1 and 3.
    # User 2: relevant {40}; ranked 20, 30, 40 -> a hit at rank 3.
    users = np.array([1, 2])
    recommended = np.array([[10, 20, 30], [20, 30, 40]])
    relevant = {1: {10, 30, 50}, 2: {40}}
    metrics, curves = ranking.report(users, recommended, relevant, 3, num_candidates=6, prefix="")
    dcg1, idcg1 = 1 / np.log(2) + 1 / np.log(4), 1 / np.log(2) + 1 / np.log(3) + 1 / np.log(4)
    dcg2, idcg2 = 1 / np.log(4), 1 / np.log(2)
    assert metrics["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert metrics["recall_at_3"] == pytest.approx((2 / 3 + 1 / 1) / 2)
    assert metrics["ndcg_at_3"] == pytest.approx((dcg1 / idcg1 + dcg2 / idcg2) / 2)
    assert metrics["map_at_3"] == pytest.approx(((1 / 1 + 2 / 3) / 3 + (1 / 3) / 1) / 2)  # ÷ min(|R|, k)
    assert metrics["map"] == pytest.approx(((1 / 1 + 2 / 3) / 3 + (1 / 3) / 1) / 2)  # |R| <= k here: the same
    assert metrics["coverage_at_3"] == pytest.approx(4 / 6)  # 10, 20, 30, 40
    assert curves["recall"] == pytest.approx([(1 / 3 + 0) / 2, (1 / 3 + 0) / 2, (2 / 3 + 1) / 2])
    assert curves["ndcg"][0] == pytest.approx((1 + 0) / 2)


def test_map_divides_by_min_of_relevant_and_k_while_map_all_divides_by_relevant():
    hits = np.array([[True, False]])
    values = ranking.metrics_at(hits, np.array([4]), 2)
    assert values["map"] == pytest.approx(1 / 2) and values["map_all"] == pytest.approx(1 / 4)


def test_most_popular_ranks_by_train_count_and_skips_what_the_user_rated():
    # Movie 7 rated by 3 users, 8 by 2, 9 by 1; user 1 rated 7 already.
    known = movielens.Ratings(np.array([1, 2, 3, 2, 3, 3]), np.array([7, 7, 7, 8, 8, 9]), np.ones(6, np.float32),
                              np.zeros(6, np.int64), np.arange(6))
    recommended, candidates = ranking.most_popular(np.array([1, 4]), known, 2)
    assert candidates == 3
    np.testing.assert_array_equal(recommended, [[8, 9], [7, 8]])


def test_top_k_excluding_never_returns_an_excluded_item():
    scores = np.array([[0.9, 0.8, 0.1, 0.5]])
    top = ranking.top_k_excluding(scores, np.array([[True, False, False, False]]), 2)
    np.testing.assert_array_equal(top, [[1, 3]])
