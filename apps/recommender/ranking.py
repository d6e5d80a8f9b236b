"""Top-k ranking metrics as the Microsoft Recommenders benchmark computes them, in numpy.

Every user with at least one test rating counts once (a user with no recommendation scores 0); a
test rating of any value is a relevant item (implicit feedback); recommendations exclude the
movies the user rated in train. For user u with relevant set R(u) and ranked list L(u):

- Precision@k = |L_k ∩ R| / k;  Recall@k = |L_k ∩ R| / |R|
- NDCG@k = DCG / IDCG with binary gains, DCG = sum over hits at rank r of 1/log(1 + r) and IDCG the
  same for min(|R|, k) hits at ranks 1, 2, ... (recommenders' ndcg_at_k)
- MAP@k = sum over hits at rank r of (hits up to r) / r, divided by min(|R|, k) (recommenders'
  map_at_k); `map` divides by |R| instead (recommenders' `map`, the MAP column of its ML-100K table)
- coverage = distinct movies recommended in anyone's top k / movies in the candidate catalogue.
"""

import numpy as np


def relevant_sets(user_ids, item_ids):
    """`{user id: set of item ids}` of the test ratings."""
    sets = {}
    for user, item in zip(np.asarray(user_ids).tolist(), np.asarray(item_ids).tolist()):
        sets.setdefault(user, set()).add(item)
    return sets


def hit_matrix(users, recommended, relevant):
    """`[users, k]` bool: whether each recommended item is relevant to its user."""
    return np.array([[item in relevant[user] for item in row] for user, row in zip(users, recommended.tolist())],
                    bool).reshape(len(users), recommended.shape[1])


def metrics_at(hits, num_relevant, k):
    """Precision, Recall, NDCG, MAP@k and MAP (÷|R|) averaged over users, from the hit matrix of the top k."""
    hits = hits[:, :k].astype(np.float64)
    ranks = np.arange(1, hits.shape[1] + 1)
    discounts = 1.0 / np.log1p(ranks)
    ideal = np.cumsum(discounts)[np.minimum(num_relevant, k) - 1]
    precision_at_rank = np.cumsum(hits, axis=1) / ranks
    reciprocal_sum = (precision_at_rank * hits).sum(axis=1)
    return {
        "precision": float((hits.sum(axis=1) / k).mean()),
        "recall": float((hits.sum(axis=1) / num_relevant).mean()),
        "ndcg": float(((hits * discounts).sum(axis=1) / ideal).mean()),
        "map": float((reciprocal_sum / np.minimum(num_relevant, k)).mean()),
        "map_all": float((reciprocal_sum / num_relevant).mean()),
    }


def report(users, recommended, relevant, k, num_candidates, prefix):
    """The headline metrics at k and the Recall@j / NDCG@j curves for j = 1..recommended.shape[1].

    `users` (raw ids) in the order of the rows of `recommended` (`[users, >= k]` item ids, best first).
    Returns `(metrics, curves)`: metric names like `{prefix}ndcg_at_10`; curves `{"recall": [...], "ndcg": [...]}`.
    """
    hits = hit_matrix(users, recommended, relevant)
    num_relevant = np.array([len(relevant[user]) for user in users], np.float64)
    at_k = metrics_at(hits, num_relevant.astype(np.int64), k)
    metrics = {f"{prefix}precision_at_{k}": at_k["precision"], f"{prefix}recall_at_{k}": at_k["recall"],
               f"{prefix}ndcg_at_{k}": at_k["ndcg"], f"{prefix}map_at_{k}": at_k["map"],
               f"{prefix}map": at_k["map_all"],
               f"{prefix}coverage_at_{k}": len(np.unique(recommended[:, :k])) / num_candidates}
    curves = {"recall": [], "ndcg": []}
    for depth in range(1, recommended.shape[1] + 1):
        values = metrics_at(hits, num_relevant.astype(np.int64), depth)
        curves["recall"].append(values["recall"])
        curves["ndcg"].append(values["ndcg"])
    return metrics, curves


def top_k_excluding(scores, excluded, k):
    """Indices of the k highest `scores` per row (`[users, items]`), skipping `excluded` (bool, same shape)."""
    k = min(k, scores.shape[1])
    scores = np.where(excluded, -np.inf, scores)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def known_matrix(users, user_ids, item_ids, catalogue):
    """`[len(users), len(catalogue)]` bool: the (user, item) pairs of `user_ids`/`item_ids` (a train split)."""
    row_of = {user: row for row, user in enumerate(np.asarray(users).tolist())}
    column_of = {item: column for column, item in enumerate(np.asarray(catalogue).tolist())}
    matrix = np.zeros((len(users), len(catalogue)), bool)
    for user, item in zip(np.asarray(user_ids).tolist(), np.asarray(item_ids).tolist()):
        if user in row_of and item in column_of:
            matrix[row_of[user], column_of[item]] = True
    return matrix


def most_popular(users, known, k):
    """The most-popular baseline: the k movies rated most often in train that the user has not rated.

    `known`: the train ratings (`movielens.Ratings`). Candidates: the movies in train. Returns
    `(recommended item ids [users, k], candidate count)`.
    """
    catalogue, counts = np.unique(known.items, return_counts=True)
    seen = known_matrix(users, known.users, known.items, catalogue)
    scores = np.broadcast_to(counts - np.arange(len(counts)) * 1e-6, seen.shape)  # ties: the lower id first
    return catalogue[top_k_excluding(scores, seen, k)], len(catalogue)
