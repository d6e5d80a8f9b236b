"""MovieLens to what the tasks train on: the folder and its layout, the split, the id vocabularies, the content tables and tf.data.

Ids stay raw everywhere outside the model: tf.data yields `{"item_id", "user_id"}` int64 as MovieLens
numbers them, and the model maps them with `keras.layers.IntegerLookup` (index 0 is the
out-of-vocabulary bucket: users and movies not in the training data). The tables below are indexed
the same way (row 0 is the unknown user or movie), so the model looks up content from ids alone.
"""

import dataclasses
from pathlib import Path

import numpy as np

from apps.recommender import movielens
from apps.recommender.config import OFFICIAL_SPLITS
from shared import data as shared_data
from shared.app import DatasetRecord
from shared.datasets import find_dataset
from shared.errors import DataError

YEAR_CENTER, YEAR_SCALE = 1990.0, 20.0
AGE_CENTER, AGE_SCALE = 35.0, 15.0


@dataclasses.dataclass
class Split:
    """The ratings of one run: `train` is what the model fits, `validation` a seeded slice of the split's
    train part held out for early stopping, `known` both together (what "rated in train" means)."""

    name: str
    layout: str
    catalogue: movielens.Catalogue
    train: movielens.Ratings
    validation: movielens.Ratings
    test: movielens.Ratings

    @property
    def known(self):
        return _concatenate(self.train, self.validation)


@dataclasses.dataclass
class TestData:
    """What `evaluate` reads: the test ratings (raw ids), the split's train part (to exclude and to rank by
    popularity) and the catalogue's titles."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    ratings: np.ndarray
    known: movielens.Ratings
    catalogue: movielens.Catalogue

    def inputs(self):
        return {"item_id": self.item_ids, "user_id": self.user_ids}

    def title_of(self, item_ids):
        return titles_of(self.catalogue, item_ids)


def titles_of(catalogue, item_ids):
    """The titles of movies (ids in the catalogue)."""
    order = np.argsort(catalogue.item_ids)
    return catalogue.titles[order[np.searchsorted(catalogue.item_ids, item_ids, sorter=order)]]


# === Inputs ===


DATASET = "movielens_100k"  # the folder under $DLSUITE_DATA_DIR


def detect_layout(folder):
    """"ml-100k" or "csv" from the files in `folder`, else None."""
    folder = Path(folder)
    if (folder / "u.item").is_file() or (folder / "u.data").is_file():
        return "ml-100k"
    if (folder / "ratings.csv").is_file():
        return "csv"
    return None


def resolve_folder(data_dir=None):
    """The folder holding the MovieLens files (`shared.datasets.find_dataset`): `--data-dir` itself or its
    `ml-100k/`, `movielens_100k/` or `movielens_100k/ml-100k/`; without `--data-dir`,
    `$DLSUITE_DATA_DIR/movielens_100k[/ml-100k]`. MovieLens' license forbids redistribution: users download
    ml-100k.zip from grouplens.org themselves."""
    return find_dataset(DATASET, data_dir, looks_right=lambda folder: detect_layout(folder) is not None,
                        subfolders=("ml-100k",),
                        expected="MovieLens in the ml-100k layout (u.data or u.item, u.user, u.genre, u1.base ...) "
                                 "or the CSV layout (ratings.csv and movies.csv), e.g. ml-100k.zip from "
                                 "grouplens.org unzipped")


def required_files(layout, split, fold):
    """The files a run with this split reads, relative to the folder."""
    if layout == "csv":
        return ["ratings.csv", "movies.csv"]
    files = ["u.item", "u.genre", "u.user"]
    if split in movielens.SPLIT_FILES:
        files += [name.format(fold=fold) for name in movielens.SPLIT_FILES[split]]
    else:
        files.append("u.data")
    return files


def check_files_present(folder, layout, split, fold):
    missing = [name for name in required_files(layout, split, fold) if not (Path(folder) / name).is_file()]
    if missing:
        raise DataError(
            f"Missing MovieLens file{'s' if len(missing) > 1 else ''} in {folder}. Received: no "
            f"{', '.join(missing)}. Expected the {layout} layout with "
            f"{', '.join(required_files(layout, split, fold))} (split={split}{f', fold={fold}' if split == 'fold' else ''}). "
            "Fix: restore the files or pick another split."
        )


def resolve_split(split, layout):
    """The split a config means on a layout: "auto" is the official fold on ml-100k, random on CSV."""
    if split == "auto":
        return "fold" if layout == "ml-100k" else "random"
    if layout == "csv" and split in OFFICIAL_SPLITS:
        raise DataError(
            f"The CSV layout has no official splits. Received: split={split!r} with ratings.csv. Expected split "
            "auto, random or per_user for the CSV layout (u1..u5, ua and ub exist only in ml-100k). "
            "Fix: --set split=random."
        )
    return split


def check(config, data_dir):
    """Find the folder, detect the layout and read every file the config's split uses: `(folder, layout)`."""
    folder = resolve_folder(data_dir)
    layout = detect_layout(folder)
    split = resolve_split(config.split, layout)
    check_files_present(folder, layout, split, config.fold)
    catalogue, ratings = movielens.load(folder, layout, split, config.fold)
    if split not in OFFICIAL_SPLITS:
        minimum = max(2, int(np.ceil(1 / min(config.test_fraction, 1 - config.test_fraction))))
        if len(ratings["all"]) < minimum:
            raise DataError(f"Too few ratings to split. Received: {len(ratings['all'])} ratings. "
                            f"Expected at least {minimum} for test_fraction={config.test_fraction}.")
    return folder, layout


def load_split(config, folder, layout):
    """Split the ratings as the config says, then cap train and test (`max_train_examples`, `max_test_examples`)."""
    split = resolve_split(config.split, layout)
    catalogue, ratings = movielens.load(folder, layout, split, config.fold)
    if split in OFFICIAL_SPLITS:
        train, test = ratings["train"], ratings["test"]
    elif split == "random":
        train_index, test_index = shared_data.split_indices(len(ratings["all"]), config.test_fraction,
                                                            config.split_seed)
        train, test = ratings["all"].take(train_index), ratings["all"].take(test_index)
    else:
        train_index, test_index = per_user_split(ratings["all"].users, config.test_fraction, config.split_seed)
        train, test = ratings["all"].take(train_index), ratings["all"].take(test_index)
    rng = np.random.default_rng(config.seed)
    fit_index, validation_index = shared_data.split_indices(len(train), config.validation_fraction, config.seed + 1)
    if config.max_train_examples:
        fit_index = np.sort(rng.permutation(fit_index)[:config.max_train_examples])
        validation_index = validation_index[:max(1, config.max_train_examples // 8)]
    if config.max_test_examples:
        test = test.take(np.sort(rng.permutation(len(test))[:config.max_test_examples]))
    name = f"u{config.fold}" if split == "fold" else split
    return Split(name, layout, catalogue, train.take(fit_index), train.take(validation_index), test)


def per_user_split(users, test_fraction, seed):
    """Each user's ratings shuffled (seeded) and cut: `round((1 - test_fraction) * n)` to train, the rest to
    test (Microsoft Recommenders' python_stratified_split). Returns sorted (train, test) index arrays."""
    rng = np.random.default_rng(seed)
    order = np.argsort(users, kind="stable")
    starts = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1]])
    train, test = [], []
    for start, end in zip(starts, np.r_[starts[1:], len(users)]):
        rows = rng.permutation(order[start:end])
        cut = int(round((1 - test_fraction) * len(rows)))
        train.append(rows[:cut])
        test.append(rows[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _concatenate(first, second):
    return movielens.Ratings(*(np.concatenate([getattr(first, field.name), getattr(second, field.name)])
                               for field in dataclasses.fields(movielens.Ratings)))


# === Vocabularies and content tables (row 0: the out-of-vocabulary bucket) ===


def index_of(vocabulary, ids):
    """Lookup indices as the model's IntegerLookup gives them: 1 + position in the sorted vocabulary, 0 if absent."""
    position = np.clip(np.searchsorted(vocabulary, ids), 0, len(vocabulary) - 1)
    return np.where(vocabulary[position] == ids, position + 1, 0).astype(np.int64)


def item_content(catalogue, item_vocabulary):
    """`[items + 1, genres + 2]`: the genre flags, the scaled release year and whether the year is known."""
    rows = index_of(np.sort(catalogue.item_ids), item_vocabulary)  # vocabulary items are catalogue items
    order = np.argsort(catalogue.item_ids)
    genres, years = catalogue.genres[order][rows - 1], catalogue.years[order][rows - 1]
    known = np.isfinite(years)
    year = np.where(known, (np.nan_to_num(years) - YEAR_CENTER) / YEAR_SCALE, 0.0)
    table = np.concatenate([genres, year[:, None], known[:, None]], axis=1).astype(np.float32)
    return np.concatenate([np.zeros((1, table.shape[1]), np.float32), table])


def user_content(catalogue, user_vocabulary):
    """`[users + 1, 2 + occupations]`: scaled age, gender (1 = F) and the occupation one-hot; None without
    user features (the CSV layout)."""
    if not catalogue.has_user_features:
        return None
    order = np.argsort(catalogue.user_ids)
    rows = order[index_of(np.sort(catalogue.user_ids), user_vocabulary) - 1]
    occupation = np.eye(len(catalogue.occupation_names), dtype=np.float32)[catalogue.occupations[rows]]
    table = np.concatenate([((catalogue.ages[rows] - AGE_CENTER) / AGE_SCALE)[:, None],
                            catalogue.genders[rows][:, None], occupation], axis=1).astype(np.float32)
    return np.concatenate([np.zeros((1, table.shape[1]), np.float32), table])


def base_info(split):
    """What both tasks' models and endpoints need: vocabularies, content, the rating range and the history."""
    train = split.train
    user_vocabulary, item_vocabulary = np.unique(train.users), np.unique(train.items)
    info = {
        "layout": split.layout,
        "split": split.name,
        "rating_range": list(movielens.RATING_RANGES[split.layout]),
        "global_mean": float(train.ratings.mean()),
        "user_ids": user_vocabulary,
        "item_ids": item_vocabulary,
        "item_content": item_content(split.catalogue, item_vocabulary),
        # The movies each user rated in the fitted data, as lookup indices (the hybrid's and the towers' history).
        "history_users": index_of(user_vocabulary, train.users),
        "history_items": index_of(item_vocabulary, train.items),
        "history_ratings": train.ratings,
        "genre_names": list(split.catalogue.genre_names),
    }
    users = user_content(split.catalogue, user_vocabulary)
    if users is not None:
        info["user_content"] = users
    return info


def history_table(info, values=None):
    """`[users + 1, items + 1]` float32 of the fitted data: 1 where the user rated the movie (or `values`, one
    per rating), 0 elsewhere and in the out-of-vocabulary row and column."""
    table = np.zeros((len(info["user_ids"]) + 1, len(info["item_ids"]) + 1), np.float32)
    table[info["history_users"], info["history_items"]] = 1.0 if values is None else values
    return table


# === tf.data and lineage ===


def inputs_of(ratings):
    return {"item_id": ratings.items, "user_id": ratings.users}


def dataset(inputs, targets, batch_size, shuffle=False, seed=0, batch_map_fn=None):
    """Batches of `({"item_id", "user_id"}, targets)` from numpy arrays in memory."""
    import tensorflow as tf

    examples = tf.data.Dataset.from_tensor_slices((inputs, targets) if targets is not None else inputs)
    return shared_data.pipeline(examples, batch_size, shuffle=shuffle, seed=seed, cache=False,
                                batch_map_fn=batch_map_fn)


def records(split, source_uri):
    dataset_name = f"movielens-{split.layout}"
    return [DatasetRecord(dataset_name, source_uri, part, len(ratings),
                          shared_data.fingerprint_arrays(ratings.users, ratings.items, ratings.ratings))
            for part, ratings in (("train", split.train), ("validation", split.validation), ("test", split.test))]


def test_data(split):
    return TestData(split.test.users, split.test.items, split.test.ratings, split.known, split.catalogue)
