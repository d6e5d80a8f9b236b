"""Read MovieLens in either layout users bring, checking every line; no TensorFlow here.

- "ml-100k" (the official zip's layout): `u.data` and the split files `u1.base` ... `ub.test`
  (`user \\t item \\t rating \\t timestamp`, integer ratings 1-5), `u.item` (ISO-8859-1, `|`-separated:
  id, title, release date, video date, IMDb URL, 19 genre flags), `u.genre` (name|index), `u.user`
  (id|age|gender|occupation|zip).
- "csv" (ml-latest, ml-25m, ...): `ratings.csv` (header `userId,movieId,rating,timestamp`, half stars
  0.5-5.0) and `movies.csv` (header `movieId,title,genres`, genres joined by `|`). No user features.

Finding the folder and its layout, and checking that a split's files are present, is `data.py`'s. Every problem (a missing file, a malformed line, a
rating out of range, an id that is not an integer or not in the catalogue) raises
`shared.errors.DataError` naming the file and the line, so `check_inputs` fails before a run opens.
Parsed files are cached by path, size and modification time: `build_data` reuses what
`check_inputs` read.
"""

import csv
import dataclasses
import re
from pathlib import Path

import numpy as np

from shared.errors import DataError

LAYOUTS = ("ml-100k", "csv")
RATING_RANGES = {"ml-100k": (1.0, 5.0), "csv": (0.5, 5.0)}
SPLIT_FILES = {"fold": ("u{fold}.base", "u{fold}.test"), "ua": ("ua.base", "ua.test"), "ub": ("ub.base", "ub.test")}
CSV_RATINGS_HEADER = ["userId", "movieId", "rating", "timestamp"]
CSV_MOVIES_HEADER = ["movieId", "title", "genres"]
NO_GENRES = "(no genres listed)"
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


@dataclasses.dataclass
class Ratings:
    """One rating file: parallel arrays, one row per rating."""

    users: np.ndarray  # int64
    items: np.ndarray  # int64
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64
    lines: np.ndarray  # int64: the line of the file each rating came from (for error messages)

    def __len__(self):
        return len(self.ratings)

    def take(self, index):
        return Ratings(self.users[index], self.items[index], self.ratings[index], self.timestamps[index],
                       self.lines[index])


@dataclasses.dataclass
class Catalogue:
    """The movies (and, for ml-100k, the users) with their content."""

    item_ids: np.ndarray  # int64 [items]
    titles: np.ndarray  # str [items]
    genres: np.ndarray  # float32 [items, genres] multi-hot
    years: np.ndarray  # float32 [items], NaN when unknown
    genre_names: list
    user_ids: np.ndarray = None  # int64 [users]; None in the CSV layout
    ages: np.ndarray = None  # float32 [users]
    genders: np.ndarray = None  # float32 [users]: 1 for F, 0 for M
    occupations: np.ndarray = None  # int64 [users], index into occupation_names
    occupation_names: list = None

    @property
    def has_user_features(self):
        return self.user_ids is not None


# === Reading, with a cache keyed by the file's identity ===

_CACHE = {}


def _cached(reader, path, *args):
    path = Path(path)
    stat = path.stat()
    key = (reader.__name__, str(path.resolve()), stat.st_size, stat.st_mtime_ns, args)
    if key not in _CACHE:
        _CACHE[key] = reader(path, *args)
    return _CACHE[key]


def _integer(path, number, what, text, line):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 0:
        raise DataError(
            f"Non-integer {what} in {path}, line {number}. Received: {what}={text!r} in line {line!r}. "
            f"Expected a non-negative integer {what}. Fix or remove the line."
        )
    return value


def _rating(path, number, text, line, layout):
    low, high = RATING_RANGES[layout]
    step = 1.0 if layout == "ml-100k" else 0.5
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high or value / step != round(value / step):  # NaN fails the range test
        expected = "an integer from 1 to 5" if layout == "ml-100k" else "a multiple of 0.5 from 0.5 to 5.0"
        raise DataError(
            f"Rating out of range in {path}, line {number}. Received: rating={text!r} in line {line!r}. "
            f"Expected {expected} ({layout} layout). Fix or remove the line."
        )
    return value


def _rating_row(path, number, fields, line, id_names, layout):
    """`(line number, user, item, rating, timestamp)` of one checked line of either layout."""
    return (number, _integer(path, number, id_names[0], fields[0], line),
            _integer(path, number, id_names[1], fields[1], line),
            _rating(path, number, fields[2], line, layout),
            _integer(path, number, "timestamp", fields[3], line))


def read_ratings_file(path):
    """An ml-100k rating file (u.data, u1.base, ...): `user \\t item \\t rating \\t timestamp` per line."""
    return _cached(_read_tab_ratings, path)


def _lines(path, encoding, errors="strict"):
    """`(line number, line)` of a text file's non-blank lines, line endings removed (1-based, as errors quote them)."""
    with open(path, encoding=encoding, errors=errors) as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
            if line.strip():
                yield number, line


def _read_tab_ratings(path):
    rows = []
    for number, line in _lines(path, "ascii", errors="replace"):
        fields = _four_fields(path, number, line, line.split("\t"), "tab-separated",
                              "user id, item id, rating, timestamp")
        rows.append(_rating_row(path, number, fields, line, ("user id", "item id"), "ml-100k"))
    return _ratings(rows, path)


def _four_fields(path, number, line, fields, separated, names):
    if len(fields) != 4:
        raise DataError(
            f"Malformed line in {path}, line {number}. Received: {line!r} ({len(fields)} {separated} fields). "
            f"Expected 4 {separated} fields: {names}."
        )
    return fields


def _ratings(rows, path):
    if not rows:
        raise DataError(f"Empty rating file. Received: {path} with no ratings. Expected one rating per line.")
    lines, users, items, ratings, timestamps = zip(*rows)
    return Ratings(np.array(users, np.int64), np.array(items, np.int64), np.array(ratings, np.float32),
                   np.array(timestamps, np.int64), np.array(lines, np.int64))


def read_csv_ratings(path):
    """`ratings.csv`: header userId,movieId,rating,timestamp; half-star ratings."""
    return _cached(_read_csv_ratings, path)


def _read_csv_ratings(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        _check_header(path, next(reader, None), CSV_RATINGS_HEADER)
        for number, fields in enumerate(reader, 2):
            if not fields:
                continue
            line = ",".join(fields)
            _four_fields(path, number, line, fields, "comma-separated", "userId, movieId, rating, timestamp")
            rows.append(_rating_row(path, number, fields, line, ("userId", "movieId"), "csv"))
    return _ratings(rows, path)


def _check_header(path, header, expected):
    if header is None or [name.strip().lstrip("\ufeff") for name in header] != expected:
        raise DataError(
            f"Unexpected header in {path}, line 1. Received: {','.join(header or [])!r}. "
            f"Expected {','.join(expected)!r} (the MovieLens CSV layout)."
        )


def read_catalogue(folder, layout):
    """The movies (and users, for ml-100k) of `folder`."""
    folder = Path(folder)
    if layout == "csv":
        return _cached(_read_csv_movies, folder / "movies.csv")
    genre_names = _cached(_read_genres, folder / "u.genre")
    movies = _cached(_read_items, folder / "u.item", len(genre_names))
    users = _cached(_read_users, folder / "u.user")
    return Catalogue(*movies, genre_names, *users)


def _read_genres(path):
    names = {}
    for number, line in _lines(path, "iso-8859-1"):
        fields = line.split("|")
        if len(fields) != 2:
            raise DataError(f"Malformed line in {path}, line {number}. Received: {line!r}. "
                            "Expected 'name|index', e.g. 'Action|1'.")
        names[_integer(path, number, "genre index", fields[1], line)] = fields[0]
    if sorted(names) != list(range(len(names))) or not names:
        raise DataError(f"Genre indices in {path} are not 0..N-1. Received: {sorted(names)}. Expected 0, 1, 2, ...")
    return [names[index] for index in range(len(names))]


def _read_items(path, num_genres):
    ids, titles, flags, years = [], [], [], []
    for number, line in _lines(path, "iso-8859-1"):
        fields = line.split("|")
        if len(fields) != 5 + num_genres:
            raise DataError(
                f"Malformed line in {path}, line {number}. Received: {line!r} ({len(fields)} '|'-separated "
                f"fields). Expected {5 + num_genres}: movie id, title, release date, video release date, IMDb URL "
                f"and {num_genres} genre flags (0/1)."
            )
        ids.append(_integer(path, number, "movie id", fields[0], line))
        titles.append(fields[1])
        if any(flag not in ("0", "1") for flag in fields[5:]):
            raise DataError(f"Malformed genre flags in {path}, line {number}. Received: {fields[5:]}. "
                            f"Expected {num_genres} flags, each 0 or 1.")
        flags.append([int(flag) for flag in fields[5:]])
        years.append(_year(fields[2][-4:] if fields[2] else "", fields[1]))
    _check_unique(path, ids, "movie id")
    return (np.array(ids, np.int64), np.array(titles, str), np.array(flags, np.float32).reshape(-1, num_genres),
            np.array(years, np.float32))


def _year(text, title):
    if text.isdigit():
        return float(text)
    match = _YEAR_IN_TITLE.search(title)
    return float(match.group(1)) if match else float("nan")


def _check_unique(path, ids, what):
    values, counts = np.unique(np.asarray(ids), return_counts=True)
    if (counts > 1).any():
        raise DataError(f"Duplicate {what} in {path}. Received: {what} {values[counts > 1][:5].tolist()} more than "
                        f"once. Expected each {what} once.")


def _read_users(path):
    ids, ages, genders, occupations = [], [], [], []
    for number, line in _lines(path, "iso-8859-1"):
        fields = line.split("|")
        if len(fields) != 5 or fields[2] not in ("M", "F"):
            raise DataError(
                f"Malformed line in {path}, line {number}. Received: {line!r}. Expected 5 '|'-separated fields: "
                "user id, age, gender (M or F), occupation, zip code."
            )
        ids.append(_integer(path, number, "user id", fields[0], line))
        ages.append(_integer(path, number, "age", fields[1], line))
        genders.append(1.0 if fields[2] == "F" else 0.0)
        occupations.append(fields[3])
    _check_unique(path, ids, "user id")
    names = sorted(set(occupations))
    return (np.array(ids, np.int64), np.array(ages, np.float32), np.array(genders, np.float32),
            np.array([names.index(name) for name in occupations], np.int64), names)


def _read_csv_movies(path):
    ids, titles, genre_lists, years = [], [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        _check_header(path, next(reader, None), CSV_MOVIES_HEADER)
        for number, fields in enumerate(reader, 2):
            if not fields:
                continue
            if len(fields) != 3:
                raise DataError(
                    f"Malformed line in {path}, line {number}. Received: {','.join(fields)!r} ({len(fields)} fields). "
                    "Expected 3 comma-separated fields: movieId, title (quoted if it holds a comma), genres."
                )
            ids.append(_integer(path, number, "movieId", fields[0], ",".join(fields)))
            titles.append(fields[1])
            genre_lists.append([name for name in fields[2].split("|") if name and name != NO_GENRES])
            years.append(_year("", fields[1].strip()))
    _check_unique(path, ids, "movieId")
    names = sorted({name for names in genre_lists for name in names})
    genres = np.zeros((len(ids), len(names)), np.float32)
    for row, names_of_movie in enumerate(genre_lists):
        genres[row, [names.index(name) for name in names_of_movie]] = 1.0
    return Catalogue(np.array(ids, np.int64), np.array(titles, str), genres, np.array(years, np.float32), names)


# === The whole check ===


def load(folder, layout, split, fold):
    """`(catalogue, ratings)` of a folder whose files are present (`data.check_files_present`): `ratings` is `{"all": Ratings}` or `{"train": ..., "test": ...}` for official
    splits. Every rating's user and movie must be in the catalogue (ml-100k: u.user and u.item)."""
    folder = Path(folder)
    catalogue = read_catalogue(folder, layout)
    if layout == "csv":
        files = {"all": folder / "ratings.csv"}
        ratings = {"all": read_csv_ratings(files["all"])}
    elif split in SPLIT_FILES:
        files = dict(zip(("train", "test"), (folder / name.format(fold=fold) for name in SPLIT_FILES[split])))
        ratings = {part: read_ratings_file(path) for part, path in files.items()}
    else:
        files = {"all": folder / "u.data"}
        ratings = {"all": read_ratings_file(files["all"])}
    for part, table in ratings.items():
        _check_known(files[part], table, table.items, catalogue.item_ids, "movie id",
                     "u.item" if layout == "ml-100k" else "movies.csv")
        if catalogue.has_user_features:
            _check_known(files[part], table, table.users, catalogue.user_ids, "user id", "u.user")
    return catalogue, ratings


def _check_known(path, table, ids, known, what, where):
    unknown = ~np.isin(ids, known)
    if unknown.any():
        first = int(np.argmax(unknown))
        raise DataError(
            f"Unknown {what} in {path}, line {table.lines[first]}. Received: {what} {ids[first]} "
            f"({int(unknown.sum())} ratings with {what}s not in {where}). Expected every {what} to be listed in "
            f"{where}. Fix the file or restore {where}."
        )
