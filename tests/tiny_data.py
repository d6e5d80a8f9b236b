"""Tiny datasets written by the tests in each dataset's official layout (seconds to write and to train on).

Vision: the four Fashion-MNIST/MNIST IDX files (gzip). Speech: FSDD's `recordings/digit_speaker_take.wav`
(8 kHz, 16-bit mono PCM) with SHA256SUMS. The data carries its labels (a band per class, a pitch per
digit), so a model can learn from it; the readers here are the tests' own, not the apps'.
"""

import gzip
import hashlib
import wave

import numpy as np

IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
SAMPLE_RATE = 8000


# === IDX ===


def write_idx(path, array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def read_idx(path):
    """The array of an IDX file of uint8 (plain or gzip): the test's own reader, not `apps.vision.classification.idx`."""
    raw = path.read_bytes()
    raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * axis: 8 + 4 * axis], "big") for axis in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def make_idx_folder(folder, sizes=(("train", 64), ("test", 32))):
    """Class k is a bright horizontal band at rows 2k+4..2k+7 over noise, so the images carry their label."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in sizes:
        labels = np.arange(count) % 10
        images = rng.integers(0, 64, size=(count, 28, 28))
        for image, label in zip(images, labels):
            image[2 * label + 4: 2 * label + 8] = 255
        images_name, labels_name = IDX_FILES[split]
        write_idx(folder / images_name, images)
        write_idx(folder / labels_name, labels)
    return folder


# === WAV ===


def write_wav(path, waveform, sample_rate=SAMPLE_RATE):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes((np.clip(waveform, -1, 1) * 32767).astype("<i2").tobytes())


def read_wav(path):
    """float32 samples in [-1, 1] of a 16-bit mono WAV file, and its sample rate."""
    with wave.open(str(path), "rb") as reader:
        frames = reader.readframes(reader.getnframes())
        return np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0, reader.getframerate()


def write_sums(folder):
    lines = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  recordings/{path.name}"
             for path in sorted((folder / "recordings").glob("*.wav"))]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def make_fsdd_folder(folder, speakers=("george", "theo"), takes=(0, 5, 6)):
    """digit_speaker_take.wav: a 0.4 s tone whose pitch says the digit; takes 0-4 are FSDD's test set."""
    (folder / "recordings").mkdir(parents=True)
    rng = np.random.default_rng(0)
    time = np.arange(int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    for digit in range(10):
        for speaker in speakers:
            for take in takes:
                tone = 0.5 * np.sin(2 * np.pi * (300 + 150 * digit) * time) + 0.01 * rng.normal(size=time.shape)
                write_wav(folder / "recordings" / f"{digit}_{speaker}_{take}.wav", tone)
    write_sums(folder)
    return folder


# === MovieLens ===

ML_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
             "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
ML_TASTES = ("Action", "Comedy", "Drama")  # user u likes genre ML_TASTES[u % 3]; movie i has genre ML_TASTES[i % 3]


def movielens_ratings(num_users=60, num_items=45, seed=0):
    """`(users, items, ratings, timestamps)` where taste decides: a user rates most movies of their genre (4-5
    stars) and a few others (1-2 stars), so both a rating model and a retrieval model can learn it."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, num_users + 1):
        for item in range(1, num_items + 1):
            liked = user % 3 == item % 3
            if rng.random() < (0.8 if liked else 0.25):
                rows.append((user, item, int(rng.integers(4, 6)) if liked else int(rng.integers(1, 3)),
                             880000000 + 1000 * len(rows)))
    return tuple(np.array(column, np.int64) for column in zip(*rows))


def _write_tab(path, users, items, ratings, timestamps):
    path.write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in zip(users, items, ratings, timestamps)))


def make_movielens_folder(folder, num_users=60, num_items=45):
    """The ml-100k layout: u.data, u1..u5 (disjoint fifths) and ua/ub (two test ratings per user) .base/.test,
    u.item (ISO-8859-1, with a non-ASCII title), u.genre, u.user, u.occupation."""
    folder.mkdir(parents=True)
    users, items, ratings, timestamps = columns = movielens_ratings(num_users, num_items)
    _write_tab(folder / "u.data", *columns)
    fold = np.arange(len(users)) % 5
    for number in range(5):
        _write_tab(folder / f"u{number + 1}.base", *(column[fold != number] for column in columns))
        _write_tab(folder / f"u{number + 1}.test", *(column[fold == number] for column in columns))
    for name, offset in (("ua", 0), ("ub", 2)):
        test = np.zeros(len(users), bool)
        for user in np.unique(users):
            test[np.flatnonzero(users == user)[offset:offset + 2]] = True
        _write_tab(folder / f"{name}.base", *(column[~test] for column in columns))
        _write_tab(folder / f"{name}.test", *(column[test] for column in columns))
    lines = []
    for item in range(1, num_items + 1):
        flags = ["1" if genre == ML_TASTES[item % 3] else "0" for genre in ML_GENRES]
        title = f"Movie {item} ({1980 + item % 20})" if item != 7 else "Amélie (2001)"
        lines.append("|".join([str(item), title, f"01-Jan-{1980 + item % 20}", "", "http://x", *flags]))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("iso-8859-1"))
    (folder / "u.genre").write_text("".join(f"{genre}|{index}\n" for index, genre in enumerate(ML_GENRES)) + "\n")
    occupations = ("engineer", "student", "writer")
    (folder / "u.user").write_text("".join(f"{user}|{20 + user % 40}|{'MF'[user % 2]}|{occupations[user % 3]}|0000{user}\n"
                                           for user in range(1, num_users + 1)))
    (folder / "u.occupation").write_text("\n".join(occupations) + "\n")
    return folder


def make_movielens_csv_folder(folder, num_users=60, num_items=45):
    """The CSV layout (ml-latest): ratings.csv with half stars, movies.csv with quoted titles and |-joined genres."""
    folder.mkdir(parents=True)
    users, items, ratings, timestamps = movielens_ratings(num_users, num_items, seed=1)
    half_stars = np.where(ratings >= 4, ratings - 0.5 * (items % 2), ratings - 0.5 * (items % 2 == 0))
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},{10 * i},{r:.1f},{t}" for u, i, r, t in
                                                   zip(users, items, half_stars, timestamps)]
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"] + [f'{10 * item},"Movie {item}, The ({1980 + item % 20})",'
                                         f'{ML_TASTES[item % 3]}|{"IMAX" if item % 4 == 0 else "(no genres listed)"}'
                                         for item in range(1, num_items + 1)]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return folder
