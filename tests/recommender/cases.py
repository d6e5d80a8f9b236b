"""The recommender's harness cases (`tests/test_tasks.py`): tiny MovieLens folders and the inputs refused before a run.

Every bad input is a `shared.errors.DataError` or `ConfigError` raised by `check_inputs`, naming the file
and the line, in the Keras "Received: ... Expected ..." form.
"""

from shared.errors import ConfigError, DataError
from tests.harness import BadInput, TaskCase
from tests.tiny_data import make_movielens_csv_folder


def _append(name, line):
    def break_data(folder):
        with open(folder / name, "a") as handle:
            handle.write(line)
        return folder

    return break_data


def _csv_layout(folder):
    return make_movielens_csv_folder(folder.parent / f"{folder.name}-csv")


def _csv_with(line):
    def break_data(folder):
        csv_folder = _csv_layout(folder)
        with open(csv_folder / "ratings.csv", "a") as handle:
            handle.write(line)
        return csv_folder

    return break_data


# u1.base of the tiny folder has 947 lines (tests.tiny_data.make_movielens_folder): an appended line is 948.
BAD_INPUTS = (
    BadInput(DataError, r"Data directory not found\. Received: --data-dir .*missing",
             break_data=lambda folder: folder / "missing"),
    BadInput(DataError, r"No movielens_100k data found\. Received: --data-dir .*empty.*Expected MovieLens in the "
                        r"ml-100k layout",
             break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
    BadInput(DataError, r"Missing MovieLens file in .*Received: no u\.item\. Expected the ml-100k layout",
             break_data=lambda folder: (folder / "u.item").unlink() or folder),
    BadInput(DataError, r"Missing MovieLens file in .*Received: no u3\.test\..*fold=3",
             overrides=("fold=3",), break_data=lambda folder: (folder / "u3.test").unlink() or folder),
    BadInput(DataError, r"Malformed line in .*u1\.base, line 948\. Received: '1\\t2\\t3' \(3 tab-separated fields\)\. "
                        r"Expected 4 tab-separated fields", break_data=_append("u1.base", "1\t2\t3\n")),
    BadInput(DataError, r"Rating out of range in .*u1\.test, line \d+\. Received: rating='6'.*Expected an integer from "
                        r"1 to 5", break_data=_append("u1.test", "1\t2\t6\t881250949\n")),
    BadInput(DataError, r"Non-integer user id in .*u1\.base, line 948\. Received: user id='alice'",
             break_data=_append("u1.base", "alice\t2\t3\t881250949\n")),
    BadInput(DataError, r"Unknown movie id in .*u1\.base, line 948\. Received: movie id 999 .*Expected every movie id "
                        r"to be listed in u\.item", break_data=_append("u1.base", "1\t999\t3\t881250949\n")),
    BadInput(DataError, r"Rating out of range in .*ratings\.csv, line \d+\. Received: rating='5\.5'.*Expected a "
                        r"multiple of 0\.5 from 0\.5 to 5\.0", break_data=_csv_with("1,10,5.5,881250949\n")),
    BadInput(DataError, r"Non-integer movieId in .*ratings\.csv, line \d+\. Received: movieId='10\.5'",
             break_data=_csv_with("1,10.5,4.0,881250949\n")),
    BadInput(DataError, r"The CSV layout has no official splits\. Received: split='ua'",
             overrides=("split=ua",), break_data=_csv_layout),
    BadInput(ConfigError, r"Invalid value for config key fold\. Received: fold=6", overrides=("fold=6",)),
    BadInput(ConfigError, r"Invalid value for config key split\. Received: split='u6'", overrides=("split=u6",)),
)


def rating_case(make_data):
    return TaskCase(make_data=make_data, overrides=("batch_size=64",), metrics=("test_rmse", "test_mae"),
                    bad_inputs=BAD_INPUTS)


def retrieval_case(make_data):
    return TaskCase(make_data=make_data, overrides=("batch_size=64", "split_seed=1"),
                    metrics=("test_precision_at_10", "test_recall_at_10", "test_ndcg_at_10", "test_map_at_10",
                             "test_coverage_at_10", "test_popular_ndcg_at_10"),
                    bad_inputs=(*BAD_INPUTS[:3], *RETRIEVAL_BAD_INPUTS))


# The retrieval split (per_user) reads u.data, which has 1,184 lines.
RETRIEVAL_BAD_INPUTS = (
    BadInput(DataError, r"Malformed line in .*u\.data, line 1185\. Received: '1 2 3 4' \(1 tab-separated fields\)",
             break_data=_append("u.data", "1 2 3 4\n")),
    BadInput(DataError, r"Missing MovieLens file in .*Received: no u\.data\..*split=per_user",
             break_data=lambda folder: (folder / "u.data").unlink() or folder),
    BadInput(ConfigError, r"Invalid value for config key curve_k\. Received: curve_k=5 with top_k=10",
             overrides=("curve_k=5",)),
)
