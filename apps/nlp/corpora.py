"""Readers for the generating tasks' data: one text (the language model) and sentence pairs (translation).

Both accept the official layouts and users' own files:
- text: Tiny Shakespeare's `input.txt` (`tiny_shakespeare/`), or any UTF-8 text file named by `text_file`.
- pairs: Tatoeba's `spa-eng/spa.txt` (`spa_eng/`: `english<TAB>spanish` per line; the official
  `spa-eng.zip` is read when the extracted file is absent), or any tab-separated file named by
  `pairs_file` whose first two columns are the source and the target (later columns, like the
  attribution column of newer manythings.org files, are ignored).

Every problem is a `shared.errors.DataError` naming the file and, for content, the line.
"""

import io
import zipfile
from pathlib import Path

from shared.datasets import find_dataset
from shared.errors import DataError

TEXT_DATASET = "tiny_shakespeare"
PAIRS_DATASET = "spa_eng"
PAIRS_ZIP = "spa-eng.zip"


def resolve_file(data_dir, dataset, name, what):
    """`(folder, folder/name)`: the folder `shared.datasets.find_dataset` finds holding `name` (`--data-dir` or its
    `<dataset>/`, else `$DLSUITE_DATA_DIR/<dataset>`). A zip archive `<first part of name>.zip` holding `name`
    also counts (spa_eng's official download)."""
    key = "text_file" if dataset == TEXT_DATASET else "pairs_file"
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise DataError(f"The data file must be inside the data folder. Received: {key}={name!r}. Expected a file "
                        f"name relative to the data folder. Fix: --data-dir <the folder holding it> --set {key}=NAME.")
    folder = find_dataset(dataset, data_dir,
                          looks_right=lambda candidate: (candidate / name).is_file() or _in_zip(candidate, name),
                          expected=f"{what} named {name} (--set {key}=NAME names another)")
    return folder, folder / name


def _in_zip(folder, name):
    archive = folder / f"{Path(name).parts[0]}.zip"
    if len(Path(name).parts) < 2 or not archive.is_file():
        return False
    with zipfile.ZipFile(archive) as handle:
        return Path(name).as_posix() in handle.namelist()


def _read_bytes(path):
    if path.is_file():
        return path.read_bytes()
    with zipfile.ZipFile(path.parent.parent / f"{path.parent.name}.zip") as handle:  # folder/spa-eng/spa.txt
        return handle.read(f"{path.parent.name}/{path.name}")


def _decode(raw, path):
    """UTF-8 text; a bad byte is reported with its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(f"Not UTF-8 text in {path}, line {line}, column {column}. Received: byte "
                        f"{raw[error.start:error.start + 1]!r}. Expected a UTF-8 file: re-save it as UTF-8.") from None


def read_text(data_dir, text_file, minimum_characters):
    """The whole text of `text_file` (`\\r\\n` read as `\\n`) and its path."""
    _folder, path = resolve_file(data_dir, TEXT_DATASET, text_file, "a UTF-8 text file (Tiny Shakespeare's input.txt)")
    text = _decode(_read_bytes(path), path).replace("\r\n", "\n")
    if len(text) < minimum_characters:
        raise DataError(f"Text too short in {path}. Received: {len(text)} characters. Expected at least "
                        f"{minimum_characters} (a training and a validation window of sequence_length + 1). Use "
                        "a longer text or --set sequence_length=N with a smaller N.")
    return text, path


def read_pairs(data_dir, pairs_file):
    """`(sources, targets, path)`: the first two tab-separated columns of every non-empty line."""
    _folder, path = resolve_file(data_dir, PAIRS_DATASET, pairs_file,
                                 "tab-separated sentence pairs, english<TAB>spanish (spa_eng's spa-eng/spa.txt)")
    sources, targets = [], []
    for number, line in enumerate(io.StringIO(_decode(_read_bytes(path), path)), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"Malformed line in {path}, line {number}. Received: {line[:80]!r} ({len(fields)} "
                            "tab-separated field). Expected source<TAB>target (english<TAB>spanish). Fix or remove "
                            "the line.")
        source, target = fields[0].strip(), fields[1].strip()
        if not source or not target:
            side = "source" if not source else "target"
            raise DataError(f"Empty {side} sentence in {path}, line {number}. Received: {line[:80]!r}. Expected "
                            "text on both sides of the tab. Fix or remove the line.")
        sources.append(source)
        targets.append(target)
    if len(sources) < 3:
        raise DataError(f"Too few sentence pairs in {path}. Received: {len(sources)} pairs. Expected at least 3 (a "
                        "training, a validation and a test pair).")
    return sources, targets, path
