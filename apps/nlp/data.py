"""Labelled text from a delimited file, its stratified split and its tf.data pipelines.

One reader serves SMS Spam (`label<TAB>text`, no header, quotes are plain characters) and any file a
user brings: the separator, the header row, the text and label columns (0-based positions or names)
and quoting come from the config (`apps.nlp.config.TextDataConfig`). Every problem names the file and
the line, in the "Received: ... Expected ..." form, and is raised by `check_inputs` before a run opens.

The split is stratified and seeded: each class is shuffled and cut into test, validation and train
shares, so a 13% minority keeps 13% in every split. Messages repeat (SMS Spam has 403 exact
repeats, ham and spam templates); a test message also seen in training measures memory, not
generalization, so by default validation and test copies of training texts are removed
(`duplicates=remove`) or only counted (`report`). Either way the counts travel in the run's info.
"""

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

from apps.nlp.config import SEPARATOR_NAMES
from shared.app import DatasetRecord
from shared.errors import DataError

DATASET = "sms_spam"
SEPARATORS = SEPARATOR_NAMES  # name -> character (the config accepts either)
MIN_PER_CLASS = 2


@dataclasses.dataclass
class LabelledText:
    texts: np.ndarray  # object array of str
    labels: np.ndarray  # int64 class ids into class_names
    lines: np.ndarray  # 1-based line numbers in the file (for the error table)

    def __len__(self):
        return len(self.texts)

    def take(self, indices):
        return LabelledText(self.texts[indices], self.labels[indices], self.lines[indices])


@dataclasses.dataclass
class Split:
    train: LabelledText
    validation: LabelledText
    test: LabelledText
    class_names: list
    duplicates: dict  # {"validation": n, "test": n} copies of training texts; "policy": remove|report


# === Reading ===


def resolve_file(config, data_dir):
    """The delimited file: `--data-dir/<file_name>` (or `--data-dir/sms_spam/<file_name>`), else
    `$DLSUITE_DATA_DIR/sms_spam/<file_name>`."""
    if data_dir:
        folder, where = Path(data_dir), f"--data-dir {data_dir}"
        if not folder.is_dir():
            raise DataError(
                f"Data directory not found. Received: --data-dir {data_dir}. Expected a folder holding "
                f"{config.file_name} (a delimited file of text and labels). Fix the path."
            )
    else:
        if not os.environ.get("DLSUITE_DATA_DIR"):
            raise DataError(
                "No text data. Received: no --data-dir and DLSUITE_DATA_DIR unset. Expected --data-dir DIR (a folder "
                f"holding {config.file_name}) or DLSUITE_DATA_DIR with {DATASET}/ in it."
            )
        folder = Path(os.environ["DLSUITE_DATA_DIR"]) / DATASET
        where = f"DLSUITE_DATA_DIR={os.environ['DLSUITE_DATA_DIR']}"
    path = folder / config.file_name
    if not path.is_file() and (folder / DATASET / config.file_name).is_file():
        path = folder / DATASET / config.file_name  # --data-dir is the datasets' root
    if not path.is_file():
        present = sorted(item.name for item in folder.iterdir())[:10] if folder.is_dir() else []
        raise DataError(
            f"Text file not found. Received: {where}, file_name={config.file_name!r} ({path} does not exist; the "
            f"folder holds {present or 'nothing'}). Expected the delimited file there. Fix it with "
            "--set file_name=<name> or --data-dir <folder>."
        )
    return path


def separator_of(config):
    return SEPARATORS.get(config.separator, config.separator)


def read_labelled_text(path, config):
    """`(texts, raw_labels, lines)` from the file; raises DataError naming the file and line of a bad row."""
    separator = separator_of(config)
    try:
        handle = open(path, encoding="utf-8", newline="")
        rows = list(csv.reader(handle, delimiter=separator, quoting=csv.QUOTE_MINIMAL if config.quoting
                               else csv.QUOTE_NONE, strict=config.quoting))
        handle.close()
    except UnicodeDecodeError as error:
        raise DataError(f"Text file is not UTF-8: {path}. Received: {error}. Expected UTF-8 text; convert it "
                        "(e.g. iconv -f latin1 -t utf-8).") from None
    except csv.Error as error:
        raise DataError(f"Malformed quoting in {path}: {error}. Expected balanced \"...\" fields, or "
                        "--set quoting=false to read quotes as plain characters.") from None
    start = 1 if config.header else 0
    if config.header and not rows:
        raise DataError(f"Empty text file: {path}. Received: no header row. Expected a header and labelled rows.")
    text_index, label_index = (column_index(rows[0] if config.header else None, getattr(config, name), name, path)
                               for name in ("text_column", "label_column"))
    needed = max(text_index, label_index) + 1
    texts, labels, lines = [], [], []
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) < needed:
            shown = separator.join(row)
            raise DataError(
                f"Malformed line in {path}, line {number}. Received: {shown[:80]!r} ({len(row)} "
                f"{_name(separator)}-separated field{'s' if len(row) != 1 else ''}). Expected at least {needed} "
                f"fields (text in column {text_index}, label in column {label_index}). Fix the line, or the "
                "separator/columns in the config."
            )
        label = row[label_index].strip()
        if not label:
            raise DataError(f"Empty label in {path}, line {number}. Received: label=''. Expected a class name or "
                            "integer in every row.")
        texts.append(row[text_index])
        labels.append(label)
        lines.append(number)
    return texts, labels, lines


def column_index(header, column, name, path):
    column = column.strip()
    if header is None:
        return int(column)
    names = [item.strip() for item in header]
    if column in names:
        return names.index(column)
    if column.isdigit() and int(column) < len(names):
        return int(column)
    raise DataError(
        f"Unknown column in {path}, line 1 (the header). Received: {name}={column!r}. Expected one of the header's "
        f"columns: {', '.join(names)}. Fix it with --set {name}=<column name or 0-based position>."
    )


def _name(separator):
    return {value: key for key, value in SEPARATORS.items()}.get(separator, repr(separator))


def class_names_of(raw_labels):
    """Sorted class names: numerically when every label is an integer ("2" after "10" otherwise)."""
    distinct = set(raw_labels)
    if all(_is_int(label) for label in distinct):
        return [str(value) for value in sorted({int(label) for label in distinct})]
    return sorted(distinct)


def _is_int(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def load(config, path):
    """Read and check the file: `(LabelledText, class_names)`; at least two classes with two messages each."""
    texts, raw_labels, lines = read_labelled_text(path, config)
    names = class_names_of(raw_labels)
    counts = {name: 0 for name in names}
    canonical = {label: str(int(label)) if _is_int(label) else label for label in set(raw_labels)}
    for label in raw_labels:
        counts[canonical[label]] += 1
    if len(names) < 2 or min(counts.values()) < MIN_PER_CLASS:
        raise DataError(
            f"Too few classes or examples in {path}. Received: {len(texts)} messages, classes {counts}. Expected at "
            f"least 2 classes with {MIN_PER_CLASS} messages each (label column {config.label_column!r}). Check the "
            "label column and the separator."
        )
    index = {name: number for number, name in enumerate(names)}
    labels = np.array([index[canonical[label]] for label in raw_labels], dtype=np.int64)
    return LabelledText(np.array(texts, dtype=object), labels, np.array(lines, dtype=np.int64)), names


# === Splitting ===


def stratified_split(labels, validation_fraction, test_fraction, seed):
    """`(train, validation, test)` sorted index arrays; each class split in the same proportions.

    Test takes `test_fraction` of each class, validation `validation_fraction` of what is left; a class
    with at least 2 examples keeps one in training.
    """
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for class_id in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == class_id))
        num_test = min(int(round(len(members) * test_fraction)), len(members) - 1)
        num_validation = min(int(round((len(members) - num_test) * validation_fraction)),
                             len(members) - num_test - 1)
        parts[2].append(members[:num_test])
        parts[1].append(members[num_test:num_test + num_validation])
        parts[0].append(members[num_test + num_validation:])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in parts)


def _normalized(text):
    return " ".join(str(text).split()).lower()


def split(config, path, limits=(None, None, None)):
    """Read, split (stratified, seeded), handle cross-split duplicates, then cap each split at `limits`."""
    data, class_names = load(config, path)
    train, validation, test = (data.take(indices) for indices in
                               stratified_split(data.labels, config.validation_fraction, config.test_fraction,
                                                config.seed))
    seen = {_normalized(text) for text in train.texts}
    duplicates = {"policy": config.duplicates}
    kept = []
    for name, part in (("validation", validation), ("test", test)):
        repeated = np.array([_normalized(text) in seen for text in part.texts], dtype=bool)
        duplicates[name] = int(repeated.sum())
        if config.duplicates == "remove":
            part = part.take(np.flatnonzero(~repeated))
        kept.append(part)
        seen |= {_normalized(text) for text in part.texts}  # test copies of validation texts count too
    validation, test = kept
    train, validation, test = (_cap(part, limit, config.seed) for part, limit in
                               zip((train, validation, test), limits))
    return Split(train, validation, test, class_names, duplicates)


def _cap(part, limit, seed):
    if limit is None or len(part) <= limit:
        return part
    return part.take(np.sort(np.random.default_rng(seed).permutation(len(part))[:limit]))


def records(split_data, source_uri):
    from shared import data as shared_data

    return [DatasetRecord("labelled-text", source_uri, name, len(part),
                          shared_data.fingerprint_arrays(part.texts.astype(str), part.labels))
            for name, part in (("train", split_data.train), ("validation", split_data.validation),
                               ("test", split_data.test))]


def balanced_class_weights(labels, num_classes):
    """`{class_id: n / (num_classes * count)}`: every class weighs the same in the loss in total."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return {class_id: float(len(labels) / (num_classes * count)) if count else 0.0
            for class_id, count in enumerate(counts)}


# === tf.data ===


def dataset(part, num_classes, batch_size, shuffle=False, seed=0):
    """Batches of `(strings, one-hot labels)`, shuffled for training. The model tokenizes: its tokenizer is a layer."""
    import tensorflow as tf

    from shared import data as shared_data

    examples = tf.data.Dataset.from_tensor_slices((part.texts.astype(str), part.labels))
    return shared_data.pipeline(examples, batch_size, shuffle=shuffle, seed=seed,
                                batch_map_fn=shared_data.one_hot(num_classes))
