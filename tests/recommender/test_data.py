"""MovieLens reading and splitting (no TensorFlow): both layouts, the checks that name file and line, the splits."""

import numpy as np
import pytest

from apps.recommender import config as recommender_config
from apps.recommender import data as recommender_data
from apps.recommender import movielens
from shared.errors import ConfigError, DataError
from tests.tiny_data import ML_GENRES, make_movielens_csv_folder, make_movielens_folder, movielens_ratings


@pytest.fixture
def ml_folder(tmp_path):
    return make_movielens_folder(tmp_path / "ml-100k")


@pytest.fixture
def csv_folder(tmp_path):
    return make_movielens_csv_folder(tmp_path / "ml-latest-small")


def test_the_layout_is_detected_from_the_files_and_found_under_the_data_root(tmp_path, ml_folder, csv_folder):
    assert recommender_data.detect_layout(ml_folder) == "ml-100k"
    assert recommender_data.detect_layout(csv_folder) == "csv"
    nested = tmp_path / "root" / "movielens_100k"
    nested.mkdir(parents=True)
    ml_folder.rename(nested / "ml-100k")
    assert recommender_data.resolve_folder(str(tmp_path / "root")) == nested / "ml-100k"  # DLSUITE_DATA_DIR's layout
    assert recommender_data.resolve_folder(str(csv_folder)) == csv_folder


def test_ml100k_files_read_with_their_content(ml_folder):
    catalogue, ratings = movielens.load(ml_folder, "ml-100k", "fold", 2)
    users, items, values, _times = movielens_ratings()
    fold = np.arange(len(users)) % 5
    np.testing.assert_array_equal(ratings["test"].items, items[fold == 1])
    np.testing.assert_array_equal(ratings["train"].ratings, values[fold != 1])
    assert catalogue.genre_names == list(ML_GENRES)
    assert catalogue.titles[6] == "Amélie (2001)"  # ISO-8859-1 decoded
    assert catalogue.genres[0, ML_GENRES.index("Comedy")] == 1 and catalogue.genres[0].sum() == 1  # movie 1: 1 % 3
    assert catalogue.years[0] == 1981
    assert catalogue.occupation_names == ["engineer", "student", "writer"]
    assert catalogue.genders[0] == 1.0 and catalogue.genders[1] == 0.0  # users 1 (F), 2 (M): 1 means F


def test_csv_files_read_half_stars_quoted_titles_and_genres(csv_folder):
    catalogue, ratings = movielens.load(csv_folder, "csv", "random", 1)
    assert catalogue.genre_names == ["Action", "Comedy", "Drama", "IMAX"]  # "(no genres listed)" is no genre
    assert catalogue.titles[0] == "Movie 1, The (1981)" and catalogue.years[0] == 1981
    assert catalogue.user_ids is None and not catalogue.has_user_features
    assert set(np.unique(ratings["all"].ratings) * 2) <= set(range(1, 11)) and 0.5 in ratings["all"].ratings
    assert movielens.RATING_RANGES["csv"] == (0.5, 5.0)


@pytest.mark.parametrize(("name", "line", "match"), [
    ("u1.base", "1\t2\n", r"Malformed line in .*u1\.base, line 948\. Received: '1\\t2' \(2 tab-separated fields\)"),
    ("u1.base", "1\t2\t0\t5\n", r"Rating out of range in .*u1\.base, line 948\. Received: rating='0'"),
    ("u1.base", "1\t2\t3.5\t5\n", r"Rating out of range .*rating='3\.5'.*Expected an integer from 1 to 5"),
    ("u1.test", "1\t2\tnan\t5\n", r"Rating out of range in .*u1\.test, line \d+\. Received: rating='nan'"),
    ("u1.base", "1\t-2\t3\t5\n", r"Non-integer item id in .*u1\.base, line 948\. Received: item id='-2'"),
    ("u1.base", "77\t2\t3\t5\n", r"Unknown user id in .*u1\.base, line 948\. Received: user id 77 .*u\.user"),
    ("u.item", "46|Extra||||http://x|0\n", r"Malformed line in .*u\.item, line 46\. .*Expected 24: movie id"),
    ("u.user", "61|thirty|M|writer|0\n", r"Non-integer age in .*u\.user, line 61\. Received: age='thirty'"),
])
def test_bad_ml100k_lines_name_the_file_and_line(ml_folder, name, line, match):
    with open(ml_folder / name, "a", encoding="iso-8859-1") as handle:
        handle.write(line)
    config = recommender_config.rating_default()
    with pytest.raises(DataError, match=match):
        recommender_data.check(config, str(ml_folder))


@pytest.mark.parametrize(("line", "match"), [
    ("1,10,0.0,5\n", r"Rating out of range in .*ratings\.csv, line \d+\. Received: rating='0\.0'.*multiple of 0\.5"),
    ("1,10,4.25,5\n", r"Rating out of range .*rating='4\.25'"),
    ("1,10,4\n", r"Malformed line in .*ratings\.csv, line \d+\. Received: '1,10,4' \(3 comma-separated fields\)"),
    ("x,10,4.0,5\n", r"Non-integer userId in .*ratings\.csv, line \d+\. Received: userId='x'"),
    ("1,999,4.0,5\n", r"Unknown movie id in .*ratings\.csv, line \d+\. Received: movie id 999 .*movies\.csv"),
])
def test_bad_csv_lines_name_the_file_and_line(csv_folder, line, match):
    with open(csv_folder / "ratings.csv", "a") as handle:
        handle.write(line)
    with pytest.raises(DataError, match=match):
        recommender_data.check(recommender_config.rating_default(), str(csv_folder))


def test_a_csv_header_that_is_not_movielens_is_refused(csv_folder):
    text = (csv_folder / "ratings.csv").read_text().replace("userId,movieId", "user,movie", 1)
    (csv_folder / "ratings.csv").write_text(text)
    with pytest.raises(DataError, match=r"Unexpected header in .*ratings\.csv, line 1\. Received: 'user,movie,rating,"
                                        r"timestamp'\. Expected 'userId,movieId,rating,timestamp'"):
        recommender_data.check(recommender_config.rating_default(), str(csv_folder))


def test_auto_split_is_the_official_fold_on_ml100k_and_random_on_csv(ml_folder, csv_folder):
    config = recommender_config.rating_default()
    assert recommender_data.load_split(config, ml_folder, "ml-100k").name == "u1"
    split = recommender_data.load_split(config, csv_folder, "csv")
    assert split.name == "random"
    assert len(split.test) == pytest.approx(0.2 * (len(split.known) + len(split.test)), abs=1)


def test_per_user_split_cuts_each_user_three_to_one_and_is_seeded():
    users = np.repeat(np.arange(1, 41), np.arange(4, 44))  # user u has u + 3 ratings
    train, test = recommender_data.per_user_split(users, 0.25, seed=42)
    assert np.intersect1d(train, test).size == 0 and len(train) + len(test) == len(users)
    for user in (1, 20, 40):
        count = int((users == user).sum())
        assert int((users[test] == user).sum()) == count - round(0.75 * count)
    again, _ = recommender_data.per_user_split(users, 0.25, seed=42)
    other, _ = recommender_data.per_user_split(users, 0.25, seed=7)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_lookup_indices_put_unknown_ids_in_bucket_zero():
    vocabulary = np.array([3, 8, 20])
    np.testing.assert_array_equal(recommender_data.index_of(vocabulary, np.array([8, 3, 5, 20, 99])), [2, 1, 0, 3, 0])


def test_config_refuses_values_it_cannot_use():
    with pytest.raises(ConfigError, match=r"Invalid value for config key fold\. Received: fold=0"):
        recommender_config.RatingConfig(fold=0)
    with pytest.raises(ConfigError, match=r"Received: model='svd'\. Expected one of: mf, hybrid"):
        recommender_config.RatingConfig(model="svd")
    with pytest.raises(ConfigError, match=r"hidden_units=\(0,\)"):
        recommender_config.RetrievalConfig(hidden_units=(0,))
    with pytest.raises(ConfigError, match=r"Received: curve_k=5 with top_k=10\. Expected curve_k >= top_k"):
        recommender_config.RetrievalConfig(curve_k=5)
