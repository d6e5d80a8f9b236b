"""The handbook's performance metrics (chapter 4), from scores and labels (numpy), and the decision threshold.

- AUC ROC and average precision: threshold-free, over all the period's transactions (scikit-learn's).
- Card precision top-k per day (CP@k): each day, every card (customer) gets the highest score of its
  transactions that day; investigators check the k highest cards; CP@k is the share of those that were
  compromised that day. Cards found compromised on earlier days are blocked, so they leave the later days'
  lists (the handbook's `remove_detected_compromised_cards=True`). The metric is the mean over the days. No
  library has it: it is the fraud domain's own.
"""

import numpy as np
import pandas as pd
from sklearn import metrics as sklearn_metrics


def auc_roc(labels, scores):
    """scikit-learn's ROC AUC; NaN when the period has a single class (no ranking to measure)."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(sklearn_metrics.roc_auc_score(labels, scores))


def average_precision(labels, scores):
    """scikit-learn's average precision: the sum over thresholds of (R_n - R_{n-1}) * P_n."""
    if not np.any(labels):
        return float("nan")
    return float(sklearn_metrics.average_precision_score(labels, scores))


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
    precision, _recall, thresholds = sklearn_metrics.precision_recall_curve(labels, scores)
    precision = precision[:-1]  # scikit-learn appends (precision 1, recall 0) without a threshold
    reached = np.flatnonzero(precision >= target_precision)  # thresholds ascend: the first is the lowest
    return float(thresholds[reached[0]] if len(reached) else thresholds[np.argmax(precision)])


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
