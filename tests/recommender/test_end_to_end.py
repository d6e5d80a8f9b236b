"""Both tasks through `dlsuite train` on the CSV layout (ratings.csv with half stars, movies.csv) written here,
then the exports answered in a fresh Python process for known and unknown ids."""

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest

from tests.conftest import REPO, new_store
from tests.tiny_data import make_movielens_csv_folder

UNKNOWN = 10**9


@pytest.fixture(scope="module")
def runs(tmp_path_factory, empty_store):
    """One rating and one retrieval run on the CSV layout, trained, evaluated and exported by the pipeline."""
    from pipelines.train import train

    folder = tmp_path_factory.mktemp("csv")
    data = make_movielens_csv_folder(folder / "ml-latest-small")
    uri = new_store(empty_store, folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        summaries = {task: train("recommender", task=task, preset="smoke", data_dir=str(data), tracking_uri=uri,
                                 export_root=str(folder / "exports"), overrides=overrides)
                     for task, overrides in (("rating", ["epochs=30", "batch_size=64"]),
                                             ("retrieval", ["epochs=15", "batch_size=64", "learning_rate=0.01"]))}
    return {"summaries": summaries, "uri": uri, "data": data}


def test_the_csv_layout_trains_end_to_end_and_learns(runs):
    client = mlflow.tracking.MlflowClient(runs["uri"])
    rating, retrieval = runs["summaries"]["rating"], runs["summaries"]["retrieval"]
    for summary in (rating, retrieval):
        run = client.get_run(summary["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.tags["dlsuite.data_dir"] == str(runs["data"].resolve())
        artifacts = {artifact.path for artifact in client.list_artifacts(summary["run_id"])}
        assert {"sample_top10.json", "data_info.json", "data_info.npz"} <= artifacts
    assert rating["config"]["split"] == "auto"  # random 80/20 on the CSV layout
    assert rating["metrics"]["test_rmse"] < 0.6 * rating["metrics"]["test_rmse_global_mean"], rating["metrics"]
    assert retrieval["metrics"]["test_ndcg_at_10"] > retrieval["metrics"]["test_popular_ndcg_at_10"] + 0.1
    assert {"error_histogram.png", "predicted_vs_true.png"} <= {
        artifact.path for artifact in client.list_artifacts(rating["run_id"])}


FRESH = """
import json, sys
import numpy as np, tensorflow as tf
rating = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
retrieval = tf.saved_model.load(sys.argv[2]).signatures["serving_default"]
users, items = json.loads(sys.argv[3]), json.loads(sys.argv[4])
out = rating(user_id=tf.constant(users, tf.int64), item_id=tf.constant(items, tf.int64))
top = retrieval(user_id=tf.constant(users, tf.int64))
print(json.dumps({"rating": out["rating"].numpy().tolist(), "known_user": out["known_user"].numpy().tolist(),
                  "known_item": out["known_item"].numpy().tolist(), "top_ids": top["item_ids"].numpy().tolist(),
                  "top_known": top["known_user"].numpy().tolist(),
                  "titles": [[t.decode() for t in row] for row in top["titles"].numpy()]}))
"""


def test_exports_answer_known_and_unknown_ids_in_a_fresh_process(runs):
    from pipelines import runs as run_store

    rating, retrieval = runs["summaries"]["rating"], runs["summaries"]["retrieval"]
    mlflow.set_tracking_uri(runs["uri"])
    info = run_store.load_info(rating["run_id"])
    user, item = int(info["user_ids"][0]), int(info["item_ids"][0])
    users, items = [user, UNKNOWN, user, UNKNOWN], [item, item, UNKNOWN, UNKNOWN]
    result = subprocess.run([sys.executable, "-c", FRESH, rating["export_dir"], retrieval["export_dir"],
                             json.dumps(users), json.dumps(items)], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["known_user"] == [True, False, True, False]
    assert answer["known_item"] == [True, True, False, False]
    assert all(0.5 <= value <= 5.0 for value in answer["rating"])
    assert answer["rating"][3] == pytest.approx(np.clip(info["global_mean"], 0.5, 5.0), abs=1e-5)  # nothing known
    assert answer["top_known"] == [True, False, True, False]
    assert answer["top_ids"][1] == answer["top_ids"][3]  # every unknown user: the same popular list
    assert len(set(answer["top_ids"][0])) == 10 and answer["top_ids"][0] != answer["top_ids"][1]
    assert all(title.endswith(")") for title in answer["titles"][0])  # "Movie 7, The (1987)"
