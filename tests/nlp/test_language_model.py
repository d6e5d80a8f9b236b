"""The language model's pieces the harness does not single out: the character tokenizer, the nanoGPT split,
the scoring chunks, and seeded generation that reproduces exactly in a fresh process."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from apps.nlp import config as nlp_config
from apps.nlp import corpora
from apps.nlp.characters import START, UNKNOWN, CharacterTokenizer, learn_vocabulary
from apps.nlp.tasks.language_model import LanguageModelTask, line_chunks, windows
from shared import export
from shared.app import DataSource
from shared.errors import DataError
from tests.nlp.tiny_corpora import make_shakespeare_folder

REPO = Path(__file__).resolve().parents[2]


def test_tokenizer_round_trips_known_characters_and_marks_unknown_ones():
    tokenizer = CharacterTokenizer(learn_vocabulary("ROMEO: hi"))
    assert tokenizer.vocabulary[0] == UNKNOWN and START in tokenizer.vocabulary
    ids = tokenizer(tf.constant(["ROMEO", "", "hé"]))
    assert ids[0, 0] == tokenizer.start_id and ids[1].shape[0] == 1  # every row starts with the newline
    assert ids[2, 2] == 0  # 'é' was never in the training text
    text = tokenizer.detokenize(ids[:, 1:]).numpy()
    assert text[0] == b"ROMEO" and text[1] == b"" and text[2].decode("utf-8") == "h" + UNKNOWN
    assert tokenizer.encode_numpy("ROMEO").tolist() == ids[0, 1:].numpy().tolist()


def test_windows_and_scoring_chunks():
    ids = np.arange(10, dtype=np.int32)
    assert windows(ids, 4, 3).tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    chunks = line_chunks("xx\nabcdef\nghijk\nlmnop\n", 4)
    assert chunks == ["abcd", "ghij", "lmno"]  # each starts right after a newline


def test_first_ninety_percent_trains_and_the_rest_validates(tmp_path):
    folder = make_shakespeare_folder(tmp_path / "data")
    config = nlp_config.language_model_smoke()
    data = LanguageModelTask().build_data(config, DataSource.files(folder))
    text = (folder / "input.txt").read_text()
    assert data.info["train_characters"] == int(len(text) * 0.9)
    assert data.info["validation_characters"] == len(text) - int(len(text) * 0.9)
    assert all(chunk in text[int(len(text) * 0.9):] for chunk in data.test["chunks"])


def test_windows_crlf_and_own_text_files(tmp_path):
    (tmp_path / "mine.txt").write_bytes(b"line one\r\nline two\r\n" * 40)
    text, path = corpora.read_text(str(tmp_path), "mine.txt", 10)
    assert "\r" not in text and path.name == "mine.txt"
    with pytest.raises(DataError, match=r"No tiny_shakespeare data found\. .*named input\.txt"):
        corpora.read_text(str(tmp_path), "input.txt", 10)


@pytest.fixture(scope="module")
def exported_generator(tmp_path_factory):
    """A tiny untrained model's export: sampling, not learning, is under test."""
    tmp_path = tmp_path_factory.mktemp("lm")
    folder = make_shakespeare_folder(tmp_path / "data")
    task, config = LanguageModelTask(), nlp_config.language_model_smoke()
    data = task.build_data(config, DataSource.files(folder))
    model = task.build_model(config, data)
    endpoints = task.endpoints(model, config, data.info)
    return export.write_saved_model(model, endpoints, tmp_path / "export"), export.serve_in_memory(endpoints)


def _request(seed, top_k=0):
    return {"text": np.array(["ROMEO:", "", "a longer prompt of several words"], dtype=object),
            "num_characters": np.int32(30), "temperature": np.float32(1.0), "top_k": np.int32(top_k),
            "seed": np.int32(seed)}


def test_generate_is_a_function_of_its_seed_also_in_a_fresh_process(exported_generator):
    path, in_memory = exported_generator
    first, again, other = (in_memory["generate"](**_request(seed)) for seed in (11, 11, 12))
    np.testing.assert_array_equal(first["text"], again["text"])
    assert not np.array_equal(first["completion"], other["completion"])
    assert [text.decode("utf-8", "replace").startswith(prompt) for text, prompt in
            zip(first["text"], ["ROMEO:", "", "a longer prompt"])] == [True] * 3
    assert all(len(text.decode("utf-8")) == 30 for text in first["completion"])
    script = (f"import numpy as np; from shared import export; "
              f"out = export.load_serving({str(path)!r})['generate'](text=np.array(['ROMEO:', '', "
              f"'a longer prompt of several words'], dtype=object), num_characters=np.int32(30), "
              f"temperature=np.float32(1.0), top_k=np.int32(0), seed=np.int32(11)); "
              f"print(json.dumps([t.decode('utf-8', 'replace') for t in out['completion']]))")
    result = subprocess.run([sys.executable, "-c", f"import json; {script}"], capture_output=True, text=True,
                            cwd=REPO, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [t.decode("utf-8", "replace")
                                                                  for t in first["completion"]]


def test_top_k_one_is_greedy_whatever_the_seed(exported_generator):
    _path, in_memory = exported_generator
    np.testing.assert_array_equal(in_memory["generate"](**_request(1, top_k=1))["text"],
                                  in_memory["generate"](**_request(2, top_k=1))["text"])


def test_logits_score_each_character_after_the_start(exported_generator):
    _path, in_memory = exported_generator
    scores = in_memory["logits"](text=np.array(["ROMEO", "", "x" * 100], dtype=object))
    assert scores["num_characters"].tolist() == [5, 0, 32]  # the smoke context is 32 characters
    assert scores["logits"].shape[:2] == (3, 32) and np.all(scores["log_likelihood"] <= 0)
