"""text_classification: the delimited-text reader, the stratified split and its duplicates, class weights, the
metrics, each model, and the served SavedModel answering awkward strings (empty, very long, non-ASCII)."""

import dataclasses

import numpy as np
import pytest

from apps.nlp import data as nlp_data
from apps.nlp.tasks.base import AWKWARD_TEXTS, matthews_correlation, worst_misclassified
from apps.nlp.config import TextClassificationConfig, text_classification_smoke
from apps.nlp.plots import precision_recall
from shared.errors import DataError
from tests.nlp.tiny_data import make_csv_folder, make_sms_folder, sms_messages

CSV = dict(file_name="news.csv", separator="comma", header=True, quoting=True, text_column="message",
           label_column="topic")


# === Reading ===


def test_sms_layout_reads_labels_and_texts_with_quotes_and_non_ascii(tmp_path):
    folder = make_sms_folder(tmp_path)
    (folder / "SMSSpamCollection").open("a", encoding="utf-8").write('ham\tshe said "see you" ¿vale? 日本\n')
    config = TextClassificationConfig()
    text, names = nlp_data.load(config, nlp_data.find_files(config, str(folder))[1])
    expected = sms_messages(120)
    assert names == ["ham", "spam"] and len(text) == 121
    assert list(text.texts[:120]) == [message for _label, message in expected]
    assert list(text.labels[:120]) == [int(label == "spam") for label, _message in expected]
    assert text.texts[-1] == 'she said "see you" ¿vale? 日本' and text.lines[-1] == 121


def test_csv_with_header_names_quoted_commas_and_integer_labels_sorted_as_numbers(tmp_path):
    config = TextClassificationConfig(**CSV)
    text, names = nlp_data.load(config, nlp_data.find_files(config, str(make_csv_folder(tmp_path)))[1])
    assert names == ["1", "2", "10"]  # not "1", "10", "2"
    assert len(text) == 60 and np.bincount(text.labels).tolist() == [20, 20, 20]
    assert any("," in message for message in text.texts)  # quoted fields kept whole
    assert text.lines[0] == 2  # line 1 is the header


def test_columns_by_position_any_separator_and_string_labels(tmp_path):
    rows = ["positive;5;great film, loved it", "negative;1;boring", "neutral;3;it was fine",
            "positive;4;wonderful acting", "negative;2;too long", "neutral;3;average"]
    (tmp_path / "reviews.txt").write_text("\n".join(rows * 2) + "\n")
    config = TextClassificationConfig(file_name="reviews.txt", separator=";", text_column="2", label_column="0")
    text, names = nlp_data.load(config, nlp_data.find_files(config, str(tmp_path))[1])
    assert names == ["negative", "neutral", "positive"]
    assert text.texts[0] == "great film, loved it" and text.labels.tolist() == [2, 0, 1, 2, 0, 1] * 2
    by_number = dataclasses.replace(config, label_column="1")  # integer ratings as classes: 1..5
    assert nlp_data.load(by_number, [tmp_path / "reviews.txt"])[1] == ["1", "2", "3", "4", "5"]


def test_quoting_off_reads_an_unbalanced_quote_as_a_character_and_on_refuses_it(tmp_path):
    (tmp_path / "SMSSpamCollection").write_text('ham\t"hello\nspam\twin "now\nham\tok\nspam\tfree\n')
    config = TextClassificationConfig()
    assert nlp_data.load(config, [tmp_path / "SMSSpamCollection"])[0].texts[0] == '"hello'
    with pytest.raises(DataError, match=r"Malformed quoting in .*SMSSpamCollection, line 2\. .*starting on line 1\)"):
        nlp_data.load(dataclasses.replace(config, quoting=True), [tmp_path / "SMSSpamCollection"])


def test_default_folder_comes_from_dlsuite_data_dir(tmp_path, monkeypatch):
    make_sms_folder(tmp_path / "sms_spam")
    monkeypatch.setenv("DLSUITE_DATA_DIR", str(tmp_path))
    assert nlp_data.find_files(TextClassificationConfig(), None) == (tmp_path / "sms_spam",
                                                                     [tmp_path / "sms_spam" / "SMSSpamCollection"])
    monkeypatch.delenv("DLSUITE_DATA_DIR")
    with pytest.raises(DataError, match=r"No sms_spam data found\. Received: no --data-dir and DLSUITE_DATA_DIR unset"):
        nlp_data.find_files(TextClassificationConfig(), None)


def _tab_files(folder, parts):
    """`parts`: `{file name: [(label, text), ...]}` written as label<TAB>text files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in parts.items():
        (folder / name).write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    return folder


def test_a_glob_or_a_subfolder_reads_every_file_with_the_same_settings_and_counts_rows_per_file(tmp_path):
    messages = sms_messages(90)
    folder = _tab_files(tmp_path / "data", {"a.tsv": messages[:40], "b.tsv": messages[40:70], "c.tsv": messages[70:],
                                            "notes.txt": [("not", "a row of the data")]})
    config = TextClassificationConfig(file_name="*.tsv")
    found, paths = nlp_data.find_files(config, str(folder))
    assert found == folder and [path.name for path in paths] == ["a.tsv", "b.tsv", "c.tsv"]
    text, names = nlp_data.load(config, paths)
    assert names == ["ham", "spam"] and list(text.texts) == [message for _label, message in messages]
    assert nlp_data.rows_per_file(text) == {"a.tsv": 40, "b.tsv": 30, "c.tsv": 20}
    assert text.files[40] == "b.tsv" and text.lines[40] == 1  # each file counts its own lines
    _tab_files(folder / "parts", {"x.tsv": messages[:50], "y.tsv": messages[50:]})
    split = nlp_data.split(TextClassificationConfig(file_name="parts"), nlp_data.data_files(folder, "parts"))
    assert split.rows_per_file == {"x.tsv": 50, "y.tsv": 40}
    _tab_files(folder / "more", {"x.tsv": messages[:10]})  # the same name in two folders counts apart
    text, _names = nlp_data.load(config, nlp_data.data_files(folder, "*/x.tsv"))
    assert nlp_data.rows_per_file(text) == {"more/x.tsv": 10, "parts/x.tsv": 50}


def test_a_file_breaking_csv_quoting_is_named_with_its_line(tmp_path):
    folder = make_csv_folder(tmp_path, name="one.csv")
    make_csv_folder(tmp_path, name="two.csv", seed=1)
    with open(tmp_path / "two.csv", "a", encoding="utf-8") as handle:
        handle.write('61,"an "unbalanced" quote",1\n62,fine,2\n')
    config = TextClassificationConfig(**{**CSV, "file_name": "*.csv"})
    with pytest.raises(DataError, match=r"Malformed quoting in .*two\.csv, line 62\. Received: .* Expected balanced"):
        nlp_data.load(config, nlp_data.find_files(config, str(folder))[1])


def test_file_names_leaving_the_data_folder_are_refused_before_anything_is_read(tmp_path):
    folder = make_sms_folder(tmp_path / "data")
    for name in ("../../../../etc/passwd", "/etc/passwd", "../data/SMSSpamCollection", "sub/../../x.tsv"):
        with pytest.raises(DataError, match=r"The text files must be inside the data folder\. Received: file_name="):
            nlp_data.find_files(TextClassificationConfig(file_name=name), str(folder))
    (folder / "outside.tsv").symlink_to(tmp_path / "secret.tsv")
    (tmp_path / "secret.tsv").write_text("ham\thello\n")
    with pytest.raises(DataError, match=r"A text file leads out of the data folder\. Received: .*outside\.tsv"):
        nlp_data.find_files(TextClassificationConfig(file_name="*.tsv"), str(folder))


def test_the_cli_refuses_a_path_out_of_the_data_folder_with_exit_2_and_no_file_contents(tmp_path):
    from tests.conftest import run_cli

    folder = make_sms_folder(tmp_path / "data")
    result = run_cli("train", "nlp", "--task", "text_classification", "--preset", "smoke", "--data-dir", folder,
                     "--set", "file_name=../../../../etc/passwd", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "The text files must be inside the data folder" in result.stderr
    assert "root:" not in result.stdout + result.stderr



# === Splitting ===


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.array([0] * 870 + [1] * 130)
    train, validation, test = nlp_data.stratified_split(labels, 0.1, 0.15, seed=3)
    assert len(set(train) | set(validation) | set(test)) == 1000
    assert not (set(train) & set(test)) and not (set(train) & set(validation)) and not (set(validation) & set(test))
    for part in (train, validation, test):
        assert abs(labels[part].mean() - 0.13) < 0.01  # every split keeps the minority's share
    assert [len(part) for part in (train, validation, test)] == [765, 85, 150]
    again = nlp_data.stratified_split(labels, 0.1, 0.15, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, validation, test), again))
    other = nlp_data.stratified_split(labels, 0.1, 0.15, seed=4)
    assert not np.array_equal(test, other[2])


def test_duplicates_of_training_texts_are_removed_or_reported(tmp_path):
    folder = make_sms_folder(tmp_path)  # 120 messages from a few templates: many repeats
    config = TextClassificationConfig()
    path = folder / "SMSSpamCollection"
    removed = nlp_data.split(config, [path])
    seen = {" ".join(text.split()).lower() for text in removed.train.texts}
    assert removed.duplicates["test"] > 0 and removed.duplicates["policy"] == "remove"
    assert not any(" ".join(text.split()).lower() in seen for text in removed.test.texts)
    reported = nlp_data.split(dataclasses.replace(config, duplicates="report"), [path])
    assert reported.duplicates == {**removed.duplicates, "policy": "report"}
    assert len(reported.test) == len(removed.test) + removed.duplicates["test"]


def test_balanced_class_weights_give_each_class_the_same_total_weight():
    from apps.nlp.tasks.text_classification import TextClassificationTask
    from shared.app import Data

    data = Data(info={"class_counts": {"ham": [900, 100, 100], "spam": [100, 10, 10]}})
    weights = TextClassificationTask().class_weight(TextClassificationConfig(), data)
    assert weights == pytest.approx({0: 1000 / 1800, 1: 1000 / 200})
    assert 900 * weights[0] == pytest.approx(100 * weights[1])
    assert TextClassificationTask().class_weight(TextClassificationConfig(class_weighting="none"), data) is None


# === Metrics ===


def test_mcc_matches_scikit_learn_and_average_precision_is_the_step_wise_sum():
    from sklearn import metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    predictions = np.where(rng.random(400) < 0.7, labels, rng.integers(0, 3, 400))
    assert matthews_correlation(labels, predictions, 3) == pytest.approx(metrics.matthews_corrcoef(labels, predictions))
    binary = (labels == 1).astype(int)
    scores = np.round(np.clip(binary * 0.4 + rng.random(400) * 0.7, 0, 1), 2)  # ties, as probabilities have
    precision, recall, average_precision = precision_recall(binary, scores)
    # The step-wise sum the hand-written curve computed before (no interpolation), on scikit-learn's curve.
    assert average_precision == pytest.approx(float(-np.sum(np.diff(recall) * precision[:-1])))
    assert recall[0] == 1.0 and recall[-1] == 0.0 and precision[-1] == 1.0
    # Hits at ranks 1, 3 and 5: AP = (1 + 2/3 + 3/5) / 3.
    assert precision_recall([1, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5])[2] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert matthews_correlation(labels, np.zeros_like(labels), 3) == 0.0  # a constant prediction, no NaN


def test_worst_misclassified_lists_the_most_confident_errors_first():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.99, 0.01], [0.3, 0.7]])
    table = worst_misclassified(np.array(["a", "b", "c", "d", "e"], dtype=object), np.array([0, 0, 0, 1, 1]),
                                probabilities, ["ham", "spam"], np.array([10, 11, 12, 13, 14]), count=2)
    assert table["text"] == ["d", "b"] and table["line"] == [13, 11]
    assert table["true"] == ["spam", "ham"] and table["predicted"] == ["ham", "spam"]
    assert table["confidence"] == [0.99, 0.8]


# === Models ===


def _tiny_classifier(model, num_classes, hidden_units, char_filters=0):
    """A tiny classifier of `model` over a 50-piece vocabulary (`w0`..`w47`), strings in, 12 tokens (and, with
    `char_filters`, the character n-gram branch over 16 characters)."""
    from apps.nlp.models import build_classifier
    from apps.nlp.vocabulary import RESERVED_TOKENS, build_tokenizer

    tokenizer = build_tokenizer([*RESERVED_TOKENS, *(f"w{number}" for number in range(48))], sequence_length=12)
    return build_classifier(tokenizer, num_classes=num_classes, model=model, sequence_length=12, embedding_dim=16,
                            filters=8, rnn_units=8, intermediate_dim=16, hidden_units=hidden_units,
                            char_filters=char_filters, char_sequence_length=16)


@pytest.mark.parametrize("model, char_filters", [("cnn", 0), ("rnn", 0), ("transformer", 0), ("cnn", 4)],
                         ids=["cnn", "rnn", "transformer", "cnn+characters"])
def test_each_model_takes_strings_answers_empty_messages_and_reloads(model, char_filters, tmp_path):
    """The tokenizer is a layer of the model: the `.keras` file (what MLflow logs) holds its vocabulary and
    reloads to the same answers on raw strings (the character branch reads any codepoint: emoji, CJK)."""
    import keras

    classifier = _tiny_classifier(model, num_classes=3, hidden_units=8, char_filters=char_filters)
    texts = tf_strings(["", "w3 w4 w5 日本 😀", " ".join(f"w{number}" for number in range(12)) + " unknown words"])
    probabilities = classifier(texts, training=False).numpy()
    assert probabilities.shape == (3, 3) and np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    classifier.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")  # registered names
    tokenizer = reloaded.layers[1]  # after the input: strings -> token ids
    assert tokenizer.get_vocabulary()[:3] == ["[PAD]", "[UNK]", "w0"] and tokenizer.vocabulary_size() == 50
    np.testing.assert_allclose(reloaded(texts, training=False).numpy(), probabilities, atol=1e-6)


@pytest.mark.parametrize("model", ["rnn", "transformer"])
def test_padding_is_masked_its_embedding_changes_nothing(model):
    """The RNN and the transformer skip padding (mask from id 0): rewriting the [PAD] embedding changes no output."""
    classifier = _tiny_classifier(model, num_classes=2, hidden_units=0)
    texts = tf_strings(["w3 w4 w5", " ".join(f"w{number}" for number in range(12))])
    before = classifier(texts, training=False).numpy()
    layer = classifier.get_layer("embedding")
    embeddings = (layer.token_embedding if model == "transformer" else layer).embeddings
    embeddings.assign(np.concatenate([np.full((1, 16), 3.0), embeddings.numpy()[1:]]).astype("float32"))
    np.testing.assert_allclose(classifier(texts, training=False).numpy(), before, atol=1e-5)
    embeddings.assign(np.concatenate([embeddings.numpy()[:5], np.full((1, 16), 3.0), embeddings.numpy()[6:]]))
    assert not np.allclose(classifier(texts, training=False).numpy()[0], before[0], atol=1e-5)  # w3 (id 5) does


def tf_strings(texts):
    import tensorflow as tf

    return tf.constant(texts)


# === Serving: the reloaded SavedModel answers any string ===


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny trained classifier, exported and reloaded from its SavedModel (as `dlsuite serve` loads it)."""
    import keras

    from pipelines.train import resolve_config
    from pipelines import catalog
    from shared import export

    folder = tmp_path_factory.mktemp("nlp-serving")
    _name, spec = catalog.task_spec("nlp", "text_classification")
    task = catalog.load_task(spec)
    config = resolve_config(spec, "smoke", overrides=["epochs=3", "batch_size=16", "vocabulary_size=300",
                                                      "sequence_length=24"])
    source = task.check_inputs(config, str(make_sms_folder(folder / "data")))
    keras.utils.set_random_seed(0)
    data = task.build_data(config, source)
    model = task.build_model(config, data)
    task.fit(model, data, config, [], folder / "checkpoints")
    endpoints = task.endpoints(model, config, data.info)
    version_dir, _ = export.export_version(model, endpoints, folder / "exports", "nlp-text_classification")
    return export.load_serving(version_dir), data, task, config


def test_reloaded_savedmodel_answers_empty_long_and_non_ascii_strings(exported):
    serving, _data, _task, _config = exported
    texts = np.array([*AWKWARD_TEXTS, "x" * 100_000, "WINNER!! claim your £1000 prize now " * 500], dtype=object)
    outputs = serving(text=texts)
    assert set(outputs) == {"probabilities", "class_ids", "class_names"}
    assert outputs["probabilities"].shape == (len(texts), 2) and np.isfinite(outputs["probabilities"]).all()
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1, atol=1e-5)
    assert set(outputs["class_names"].astype(bytes)) <= {b"ham", b"spam"}
    assert outputs["class_names"][-1] == b"spam"  # a long spam message is truncated, still understood


def test_evaluation_reports_every_metric_the_issue_asks_for(exported):
    serving, data, task, config = exported
    report = task.evaluate(serving, data, config)
    assert {"test_accuracy", "test_mcc", "test_average_precision", "test_precision_spam", "test_recall_spam",
            "test_f1_spam", "test_precision_ham", "test_recall_ham", "test_f1_ham"} <= set(report.metrics)
    assert report.metrics["test_mcc"] > 0.5  # templates are easy: the tiny model separates them
    assert {"confusion_matrix.png", "precision_recall.png"} <= set(report.figures)
    assert {"per_class_metrics.json", "worst_misclassified.json"} <= set(report.tables)
    table = report.tables["worst_misclassified.json"]
    assert set(table) == {"file", "line", "true", "predicted", "confidence", "text"}
    assert set(table["file"]) <= {"SMSSpamCollection"} and data.info["rows_per_file"] == {"SMSSpamCollection": 120}
    assert len(table["line"]) == report.metrics["test_errors"] or len(table["line"]) == config.worst_examples


def test_vocabulary_is_learned_from_the_training_split_only(tmp_path):
    from apps.nlp.tasks.text_classification import TextClassificationTask

    folder = make_sms_folder(tmp_path)
    config = dataclasses.replace(text_classification_smoke(), vocabulary_size=2000, test_fraction=0.3)
    split = nlp_data.split(config, [folder / "SMSSpamCollection"])
    split.test.texts[0] = "zyxwvut qqqqjjjj"  # words in no training message
    info = TextClassificationTask().text_info(config, split)
    assert "zyxwvut" not in info["vocabulary"] and "qqqqjjjj" not in info["vocabulary"]
    assert info["vocabulary"][:2] == ["[PAD]", "[UNK]"]
