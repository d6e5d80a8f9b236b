"""Harness cases of the generating NLP tasks (`tests/test_tasks.py`): tiny Tiny-Shakespeare and spa-eng folders
(`tests.nlp.tiny_corpora`) and the inputs refused before a run, each naming the file and the line."""

from shared.errors import ConfigError, DataError
from tests.harness import BadInput, TaskCase
from tests.nlp.tiny_corpora import make_shakespeare_folder, make_spa_eng_folder, spa_eng_pairs


def _write(name, content):
    def break_data(folder):
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
        return folder

    return break_data


def _append(name, line):
    def break_data(folder):
        with open(folder / name, "a", encoding="utf-8") as handle:
            handle.write(line)
        return folder

    return break_data


MISSING_FOLDER = BadInput(DataError, r"Data directory not found\. Received: --data-dir .*missing",
                          break_data=lambda folder: folder / "missing")

LANGUAGE_MODEL = TaskCase(
    make_data=make_shakespeare_folder,
    overrides=("sample_characters=20",),
    metrics=("validation_loss_nats", "validation_perplexity", "validation_bits_per_character"),
    bad_inputs=(
        MISSING_FOLDER,
        BadInput(DataError, r"No tiny_shakespeare data found\. Received: --data-dir .* \(looked in .*\)\. Expected a "
                            r"UTF-8 text file .* named input\.txt",
                 break_data=lambda folder: (folder / "input.txt").unlink() or folder),
        BadInput(DataError, r"No tiny_shakespeare data found\. .*named plays\.txt \(--set text_file=NAME",
                 overrides=("text_file=plays.txt",)),
        BadInput(DataError, r"Not UTF-8 text in .*input\.txt, line 3, column 6\. Received: byte b'\\xff'",
                 break_data=_write("input.txt", b"ROMEO:\nHello\nWhat \xff light\n" * 50)),
        BadInput(DataError, r"Text too short in .*input\.txt\. Received: 7 characters\. Expected at least 330",
                 break_data=_write("input.txt", "ROMEO:\n")),
        BadInput(ConfigError, r"Received: model='gru'\. Expected one of: transformer, lstm", overrides=("model=gru",)),
        BadInput(ConfigError, r"Received: num_heads=3 with embedding_dim=32\. Expected a divisor of embedding_dim",
                 overrides=("num_heads=3",)),
    ),
)

NEXT_LINE = len(spa_eng_pairs()) * 3 + 1  # make_spa_eng_folder writes every pair three times

TRANSLATION = TaskCase(
    make_data=make_spa_eng_folder,
    overrides=("batch_size=16",),
    metrics=("test_bleu", "test_chrf", "test_sentences_scored"),
    bad_inputs=(
        MISSING_FOLDER,
        BadInput(DataError, r"No spa_eng data found\. Received: --data-dir .* \(looked in .*\)\. Expected "
                            r"tab-separated .* named spa-eng/spa\.txt",
                 break_data=lambda folder: (folder / "spa-eng" / "spa.txt").unlink() or folder),
        BadInput(DataError, rf"Malformed line in .*spa\.txt, line {NEXT_LINE}\. Received: 'Hello there' \(1 "
                            r"tab-separated field\)\. Expected source<TAB>target",
                 break_data=_append("spa-eng/spa.txt", "Hello there\n")),
        BadInput(DataError, rf"Empty target sentence in .*spa\.txt, line {NEXT_LINE}\.",
                 break_data=_append("spa-eng/spa.txt", "Hello.\t \n")),
        BadInput(DataError, r"Too few sentence pairs in .*spa\.txt\. Received: 2 pairs",
                 break_data=_write("spa-eng/spa.txt", "Go.\tVe.\nHi.\tHola.\n")),
        BadInput(ConfigError, r"Received: decoding='sample'\. Expected one of: greedy, beam",
                 overrides=("decoding=sample",)),
        BadInput(ConfigError, r"Invalid split\. Received: test_fraction=0\.6, validation_fraction=0\.5",
                 overrides=("test_fraction=0.6", "validation_fraction=0.5")),
    ),
)
