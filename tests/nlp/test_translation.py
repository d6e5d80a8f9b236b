"""Translation's pieces the harness does not single out: both spa-eng layouts, the split by English sentence,
the scores, the punctuation clean-up, and beam search served in the graph."""

import numpy as np
import pytest
import tensorflow as tf

from apps.nlp import config as nlp_config
from apps.nlp import corpora
from apps.nlp.tasks.translation import TranslationTask, bleu_sample, corpus_scores, join_pieces, split_pairs
from shared import export
from shared.app import DataSource
from shared.config import apply_overrides
from tests.nlp.tiny_corpora import make_spa_eng_folder, spa_eng_pairs


def test_the_official_zip_reads_like_the_extracted_file(tmp_path):
    extracted = corpora.read_pairs(str(make_spa_eng_folder(tmp_path / "plain")), "spa-eng/spa.txt")
    zipped = corpora.read_pairs(str(make_spa_eng_folder(tmp_path / "zip", zipped=True)), "spa-eng/spa.txt")
    assert extracted[:2] == zipped[:2] and len(extracted[0]) == 3 * len(spa_eng_pairs())


def test_extra_columns_are_ignored(tmp_path):
    (tmp_path / "pairs.tsv").write_text("Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org\n" * 3)
    sources, targets, _ = corpora.read_pairs(str(tmp_path), "pairs.tsv")
    assert sources == ["Go."] * 3 and targets == ["Ve."] * 3


def test_an_english_sentence_and_all_its_translations_stay_in_one_split():
    pairs = spa_eng_pairs() * 3
    config = apply_overrides(nlp_config.translation_smoke(), {"test_fraction": 0.2}, "test")
    splits = split_pairs([english for english, _ in pairs], [spanish for _, spanish in pairs], config)
    sets = {name: set(part[0]) for name, part in splits.items()}
    assert not (sets["train"] & sets["test"]) and not (sets["train"] & sets["validation"])
    assert sum(len(part[0]) for part in splits.values()) == len(pairs)


def test_scores_use_every_reference():
    assert corpus_scores(["El gato es negro."], [["El perro es negro.", "El gato es negro."]])[0] == pytest.approx(100)
    bleu, chrf = corpus_scores(["Hola."], [["Adiós."]])
    assert bleu < 10 and chrf < 30


def test_bleu_scores_a_seeded_sample_of_the_whole_test_split_not_its_first_sentences():
    chosen = bleu_sample(5000, 2000, seed=42)
    assert len(chosen) == len(set(chosen)) == 2000 and list(chosen) == sorted(chosen)
    assert chosen.max() > 4500 and np.array_equal(chosen, bleu_sample(5000, 2000, seed=42))  # the long end too
    assert not np.array_equal(chosen, bleu_sample(5000, 2000, seed=43))
    assert np.array_equal(bleu_sample(50, 2000, seed=42), np.arange(50)) and len(bleu_sample(50, None, 0)) == 50


def test_word_pieces_are_joined_with_spanish_punctuation():
    text = join_pieces(tf.constant(["¿ dónde está el gato ?", "¡ corre !", "sí , claro ."])).numpy()
    assert [value.decode("utf-8") for value in text] == ["¿dónde está el gato?", "¡corre!", "sí, claro."]


def test_beam_search_serves_strings_in_the_graph(tmp_path):
    task = TranslationTask()
    config = nlp_config.translation_beam_smoke()
    data = task.build_data(config, DataSource.files(make_spa_eng_folder(tmp_path / "data")))
    model = task.build_model(config, data)
    serving = export.serve_in_memory(task.endpoints(model, config, data.info))
    outputs = serving(text=np.array(["I see the dog.", "", "x" * 500], dtype=object))
    assert outputs["translation"].shape == (3,) and outputs["translation"].dtype.kind in "OS"
    assert np.all(outputs["num_tokens"] <= config.max_output_tokens)
