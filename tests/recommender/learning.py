"""Did an exported recommender learn? Scored by the tests on the raw ml-100k files, independently of the app.

The files are read with numpy (not `apps.recommender.movielens`) and the export called through
`tf.saved_model.load`. Each function returns `(score, chance)` where higher is better, as
`tests/test_contract.py` expects.
"""

from pathlib import Path

import numpy as np


def _folder(data_root):
    for candidate in (Path(data_root), Path(data_root) / "ml-100k", Path(data_root) / "movielens_100k" / "ml-100k"):
        if (candidate / "u.data").is_file():
            return candidate
    raise FileNotFoundError(f"no ml-100k folder (u.data) under {data_root}")


def _ratings(path):
    return np.loadtxt(path, dtype=np.int64, delimiter="\t").reshape(-1, 4)  # user, item, rating, timestamp


def _call(export_dir, **inputs):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_dir))
    signature = loaded.signatures["serving_default"]
    return {key: value.numpy() for key, value in signature(**{key: tf.constant(value, tf.int64)
                                                              for key, value in inputs.items()}).items()}


def rating_rmse(export_dir, data_root, fold=1):
    """`(-RMSE, -RMSE of the training mean)` on u<fold>.test: the served ratings against the file's."""
    folder = _folder(data_root)
    train, test = _ratings(folder / f"u{fold}.base"), _ratings(folder / f"u{fold}.test")
    predicted = _call(export_dir, user_id=test[:, 0], item_id=test[:, 1])["rating"]
    rmse = float(np.sqrt(np.mean(np.square(predicted - test[:, 2]))))
    mean_rmse = float(np.sqrt(np.mean(np.square(train[:, 2].mean() - test[:, 2]))))
    return -rmse, -mean_rmse


def retrieval_recall(export_dir, data_root, split="ua"):
    """`(Recall@10, expected Recall@10 of 10 random unrated movies)` on <split>.test (10 movies per user)."""
    folder = _folder(data_root)
    train, test = _ratings(folder / f"{split}.base"), _ratings(folder / f"{split}.test")
    users = np.unique(test[:, 0])
    top = _call(export_dir, user_id=users)["item_ids"][:, :10]
    catalogue = np.unique(train[:, 1])
    recalls, chances = [], []
    for user, row in zip(users, top):
        relevant = set(test[test[:, 0] == user, 1].tolist())
        unrated = len(catalogue) - len(set(train[train[:, 0] == user, 1].tolist()))
        recalls.append(len(relevant & set(row.tolist())) / len(relevant))
        chances.append(10 / unrated)  # each relevant movie is in a random 10 of the unrated with this chance
    return float(np.mean(recalls)), float(np.mean(chances))
