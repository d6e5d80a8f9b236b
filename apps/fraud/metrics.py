"""The handbook's performance metrics (chapter 4), from scores and labels (numpy), and the decision threshold.

- AUC ROC and average precision: threshold-free, over all test transactions.
- Card precision top-k per day (CP@k): each day, every card (customer) gets the highest score of its
  transactions that day; investigators check the k highest cards; CP@k is the share of those that were
  compromised that day. Cards found compromised on earlier days are blocked, so they leave the later days'
  lists (the handbook's `remove_detected_compromised_cards=True`). The metric is the mean over the days.
"""

import numpy as np
import pandas as pd


def curve_points(labels, scores):
    """`(thresholds, true positives, false positives)` at each distinct score, highest first."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    scores, labels = np.asarray(scores, np.float64)[order], np.asarray(labels)[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_each]
    return scores[last_of_each], true_positives, 1 + last_of_each - true_positives


def roc_curve(labels, scores):
    thresholds, true_positives, false_positives = curve_points(labels, scores)
    positives, negatives = max(true_positives[-1], 1), max(false_positives[-1], 1)
    return np.r_[0.0, false_positives / negatives], np.r_[0.0, true_positives / positives]


def auc_roc(labels, scores):
    false_rate, true_rate = roc_curve(labels, scores)
    return float(np.trapezoid(true_rate, false_rate))


def precision_recall_curve(labels, scores):
    """`(precision, recall, thresholds)` at each distinct score, highest first."""
    thresholds, true_positives, false_positives = curve_points(labels, scores)
    precision = true_positives / (true_positives + false_positives)
    return precision, true_positives / max(true_positives[-1], 1), thresholds


def average_precision(labels, scores):
    """sum over thresholds of (R_n - R_{n-1}) * P_n, as scikit-learn defines it."""
    precision, recall, _thresholds = precision_recall_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def card_precision_top_k(customers, days, labels, scores, top_k=100):
    """`(mean CP@k, {day: CP@k})`, detected cards removed from the following days."""
    frame = pd.DataFrame({"customer": customers, "day": days, "label": labels, "score": scores})
    detected, per_day = set(), {}
    for day, transactions in frame.groupby("day", sort=True):
        cards = transactions[~transactions["customer"].isin(detected)].groupby("customer")[["label", "score"]].max()
        top = cards.sort_values("score", ascending=False, kind="stable").head(top_k)
        found = top.index[top["label"] == 1]
        per_day[str(pd.Timestamp(day).date())] = len(found) / top_k
        detected.update(found.tolist())
    return float(np.mean(list(per_day.values()))), per_day


def choose_threshold(labels, scores, days, rule, target_precision=0.5, alerts_per_day=100):
    """The decision threshold, from validation scores.

    rule "precision": the lowest threshold whose validation precision reaches `target_precision` (the most
    frauds caught at that precision); the highest-precision threshold if none reaches it.
    rule "alert_budget": the score above which `alerts_per_day` transactions a day were flagged on average.
    """
    scores = np.asarray(scores, np.float64)
    if rule == "alert_budget":
        budget = alerts_per_day * max(len(np.unique(days)), 1)
        if budget >= len(scores):
            return float(scores.min())
        return float(np.sort(scores)[::-1][budget - 1])
    precision, _recall, thresholds = precision_recall_curve(labels, scores)
    reached = np.flatnonzero(precision >= target_precision)
    return float(thresholds[reached[-1]] if len(reached) else thresholds[np.argmax(precision)])


def report(labels, scores, customers, days, flagged, top_k=100, prefix="test_"):
    """The metrics of one period: `({name: value}, {day: CP@k})`. `flagged`: the decisions (is_fraud)."""
    labels, flagged = np.asarray(labels).astype(int), np.asarray(flagged, dtype=bool)
    card_precision, per_day = card_precision_top_k(customers, days, labels, scores, top_k)
    true_positives = int((flagged & (labels == 1)).sum())
    metrics = {
        f"{prefix}auc_roc": auc_roc(labels, scores),
        f"{prefix}average_precision": average_precision(labels, scores),
        f"{prefix}card_precision_top_{top_k}": card_precision,
        f"{prefix}precision_at_threshold": true_positives / max(int(flagged.sum()), 1),
        f"{prefix}recall_at_threshold": true_positives / max(int(labels.sum()), 1),
        f"{prefix}alerts_per_day": float(flagged.sum() / max(len(per_day), 1)),
        f"{prefix}fraud_rate": float(labels.mean()),
    }
    return metrics, per_day
