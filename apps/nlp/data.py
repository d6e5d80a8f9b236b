"""Labelled text from delimited files, its stratified split and its tf.data pipelines.

One reader serves SMS Spam (`label<TAB>text`, no header, quotes are plain characters) and any files a
user brings (`file_name`: one file, a subfolder of files or a glob such as `*.tsv`, every one inside the
data folder and read with the same settings): the separator, the header row, the text and label columns
(0-based positions or names) and quoting come from the config (`apps.nlp.config.TextDataConfig`). Every
problem names the file and the line, in the "Received: ... Expected ..." form, and is raised by `check_inputs`
before a run opens.

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
from shared.datasets import find_dataset
from shared.errors import DataError

DATASET = "sms_spam"
SEPARATORS = SEPARATOR_NAMES  # name -> character (the config accepts either)
MIN_PER_CLASS = 2


@dataclasses.dataclass
class LabelledText:
    texts: np.ndarray  # object array of str
    labels: np.ndarray  # int64 class ids into class_names
    lines: np.ndarray  # 1-based line numbers in the file (for the error table)
    files: np.ndarray  # object array: the file each row came from (relative to the folder the files share)

    def __len__(self):
        return len(self.texts)

    def take(self, indices):
        return LabelledText(self.texts[indices], self.labels[indices], self.lines[indices], self.files[indices])


@dataclasses.dataclass
class Split:
    train: LabelledText
    validation: LabelledText
    test: LabelledText
    class_names: list
    duplicates: dict  # {"validation": n, "test": n} copies of training texts; "policy": remove|report
    rows_per_file: dict  # {file name: rows read}, before the split


# === Reading ===


def check_file_name(file_name):
    """Refuse a `file_name` that leaves the data folder (absolute, or with `..`), before anything is read."""
    if Path(file_name).is_absolute() or ".." in Path(file_name).parts:
        raise DataError(
            f"The text files must be inside the data folder. Received: file_name={file_name!r}. Expected a file "
            "name, a subfolder or a glob (e.g. *.tsv) relative to the data folder. Fix: --data-dir <the folder "
            "holding the files> --set file_name=<name or glob inside it>."
        )


def data_files(folder, file_name):
    """The delimited files `file_name` names in `folder`, sorted: one file, every file of a subfolder (hidden
    ones skipped), or a glob's matches (`*.tsv`, `parts/*.csv`). Every one must resolve inside `folder`
    (a symbolic link out of it is refused). Empty when nothing matches."""
    check_file_name(file_name)
    folder = Path(folder)
    target = folder / file_name
    if any(character in file_name for character in "*?["):
        paths = [path for path in folder.glob(file_name) if path.is_file()]
    elif target.is_dir():
        paths = [path for path in target.iterdir() if path.is_file() and not path.name.startswith(".")]
    else:
        paths = [target] if target.is_file() else []
    root = folder.resolve()
    for path in paths:
        if not path.resolve().is_relative_to(root):
            raise DataError(
                f"A text file leads out of the data folder. Received: {path} -> {path.resolve()}. Expected every "
                f"file of file_name={file_name!r} inside {root}. Fix: copy the file into the folder."
            )
    return sorted(paths)


def find_files(config, data_dir):
    """`(folder, files)`: the data folder (`shared.datasets.find_dataset`: `--data-dir` or its `sms_spam/`, else
    `$DLSUITE_DATA_DIR/sms_spam`) and the files `config.file_name` names in it (`data_files`)."""
    check_file_name(config.file_name)
    folder = find_dataset(DATASET, data_dir,
                          looks_right=lambda candidate: bool(data_files(candidate, config.file_name)),
                          expected=f"file_name={config.file_name!r} there (a delimited file of text and labels, a "
                                   "subfolder of them or a glob such as *.tsv; --set file_name=... names others)")
    return folder, data_files(folder, config.file_name)


def separator_of(config):
    return SEPARATORS.get(config.separator, config.separator)


def read_rows(path, config):
    """`[(row, line)]` of the file: each row's fields and the line it starts on. Raises DataError naming the file and
    the line where CSV quoting breaks (`quoting=true`), or where a byte is not UTF-8."""
    separator = separator_of(config)
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=separator, quoting=csv.QUOTE_MINIMAL if config.quoting
                            else csv.QUOTE_NONE, strict=config.quoting)
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return rows
            except UnicodeDecodeError as error:
                raise DataError(f"Text file is not UTF-8: {path}, after line {reader.line_num}. Received: {error}. "
                                "Expected UTF-8 text; convert it (e.g. iconv -f latin1 -t utf-8).") from None
            except csv.Error as error:
                raise DataError(
                    f"Malformed quoting in {path}, line {reader.line_num}. Received: {error} (in the row starting on "
                    f"line {start}). Expected balanced \"...\" fields: a quote inside a quoted field is written "
                    "twice. Fix the line, or --set quoting=false to read quotes as plain characters."
                ) from None
            rows.append((row, start))


def read_labelled_text(path, config):
    """`(texts, raw_labels, lines)` from the file; raises DataError naming the file and line of a bad row."""
    separator = separator_of(config)
    rows = read_rows(path, config)
    if config.header and not rows:
        raise DataError(f"Empty text file: {path}. Received: no header row. Expected a header and labelled rows.")
    text_index, label_index = (column_index(rows[0][0] if config.header else None, getattr(config, name), name, path)
                               for name in ("text_column", "label_column"))
    needed = max(text_index, label_index) + 1
    texts, labels, lines = [], [], []
    for row, number in rows[1 if config.header else 0:]:
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


def load(config, paths):
    """Read and check the files (the same column settings for each): `(LabelledText, class_names)`; at least two
    classes with two messages each."""
    paths = [Path(path) for path in paths]
    base = Path(os.path.commonpath([path.parent for path in paths])) if paths else None
    texts, raw_labels, lines, files = [], [], [], []
    for path in paths:
        file_texts, file_labels, file_lines = read_labelled_text(path, config)
        texts += file_texts
        raw_labels += file_labels
        lines += file_lines
        files += [path.relative_to(base).as_posix()] * len(file_texts)  # a.tsv, or parts/a.tsv beside other/a.tsv
    where = ", ".join(str(path) for path in paths)
    names = class_names_of(raw_labels)
    counts = {name: 0 for name in names}
    canonical = {label: str(int(label)) if _is_int(label) else label for label in set(raw_labels)}
    for label in raw_labels:
        counts[canonical[label]] += 1
    if len(names) < 2 or min(counts.values()) < MIN_PER_CLASS:
        raise DataError(
            f"Too few classes or examples in {where}. Received: {len(texts)} messages, classes {counts}. Expected at "
            f"least 2 classes with {MIN_PER_CLASS} messages each (label column {config.label_column!r}). Check the "
            "label column and the separator."
        )
    index = {name: number for number, name in enumerate(names)}
    labels = np.array([index[canonical[label]] for label in raw_labels], dtype=np.int64)
    return LabelledText(np.array(texts, dtype=object), labels, np.array(lines, dtype=np.int64),
                        np.array(files, dtype=object)), names


def rows_per_file(text):
    """`{file: rows read}` of a `LabelledText` (files relative to the folder they share, sorted)."""
    return {str(name): int(count) for name, count in zip(*np.unique(text.files, return_counts=True))}


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


def split(config, paths, limits=(None, None, None)):
    """Read the files, split (stratified, seeded), handle cross-split duplicates, then cap each split at `limits`."""
    data, class_names = load(config, paths)
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
    return Split(train, validation, test, class_names, duplicates, rows_per_file(data))


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
