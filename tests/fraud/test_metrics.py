"""The handbook's metrics on hand-made cases: CP@k with detected cards removed, AUC and AP, the threshold rules."""

import numpy as np
import pytest

from apps.fraud import metrics


def test_card_precision_top_k_takes_each_cards_best_score_and_drops_cards_detected_earlier():
    customers = np.array([1, 1, 2, 3, 1, 2, 3, 4])
    days = np.array(["2018-08-08"] * 4 + ["2018-08-09"] * 4, dtype="datetime64[D]")
    labels = np.array([0, 1, 0, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.99, 0.7, 0.6, 0.1])
    mean, per_day = metrics.card_precision_top_k(customers, days, labels, scores, top_k=2)
    # Day 1: cards 1 (max 0.9, a fraud that day) and 2 -> 1/2. Day 2: card 1 is blocked; 2 and 3 -> 1/2.
    assert per_day == {"2018-08-08": 0.5, "2018-08-09": 0.5} and mean == 0.5


def test_auc_and_average_precision_of_a_perfect_and_a_reversed_ranking():
    labels = np.array([0, 0, 1, 1])
    assert metrics.auc_roc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.average_precision(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.auc_roc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert metrics.average_precision(labels, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_threshold_rules():
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    days = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    assert metrics.choose_threshold(labels, scores, days, "alert_budget", alerts_per_day=1) == 0.8  # 2 alerts, 2 days
    assert metrics.choose_threshold(labels, scores, days, "precision", target_precision=0.75) == 0.6  # 3 of 4
    assert metrics.choose_threshold(labels, scores, days, "precision", target_precision=1.0) == 0.8
