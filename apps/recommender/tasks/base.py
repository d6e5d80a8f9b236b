"""What both recommender tasks share: the MovieLens source and its checks, the split, and the sample table.

Each task (`tasks/rating.py`, `tasks/retrieval.py`) subclasses `MovieLensTask` and defines its data pipeline,
model, endpoints and evaluation.
"""

import numpy as np

from apps.recommender import data as recommender_data
from apps.recommender import ranking
from shared.app import DataSource, Task

UNKNOWN_ID = 10**9  # an id no MovieLens release uses: the examples check the out-of-vocabulary answer


class MovieLensTask(Task):
    app = "recommender"

    def check_inputs(self, config, data_dir):
        folder, _layout = recommender_data.check(config, data_dir)
        return DataSource.files(folder)

    @staticmethod
    def load_split(config, source):
        """The ratings of `source` split as the config says (`recommender_data.Split`)."""
        return recommender_data.load_split(config, source.path, recommender_data.detect_layout(source.path))


def sample_table(test, users, recommended, scores=None):
    """A few users' top k with titles, and whether each movie is among their test ratings (MLflow table)."""
    relevant = ranking.relevant_sets(test.user_ids, test.item_ids)
    table = {"user_id": [], "rank": [], "item_id": [], "title": [], "in_test": []}
    if scores is not None:
        table["score"] = []
    for row, user in enumerate(np.asarray(users).tolist()):
        titles = test.title_of(recommended[row])
        for rank, item in enumerate(recommended[row].tolist()):
            table["user_id"].append(int(user))
            table["rank"].append(rank + 1)
            table["item_id"].append(int(item))
            table["title"].append(str(titles[rank]))
            table["in_test"].append(bool(item in relevant.get(user, ())))
            if scores is not None:
                table["score"].append(round(float(scores[row][rank]), 4))
    return table
