"""Configs: presets, YAML and --set overrides, type coercion, validation messages."""

import dataclasses

import pytest

from apps.vision.config import ClassificationConfig, default, smoke
from shared import config as config_lib
from shared.errors import ConfigError


def test_presets_differ_only_where_they_say():
    changed = {field for field in config_lib.field_names(ClassificationConfig)
               if getattr(default(), field) != getattr(smoke(), field)}
    assert changed == {"epochs", "max_train_examples", "max_test_examples", "filters", "dense_units", "warmup_epochs"}


def test_set_pairs_are_coerced_to_field_types():
    pairs = config_lib.parse_set_pairs(["epochs=3", "filters=16,32", "random_flip=false", "max_train_examples=none",
                                        "learning_rate=0.01"])
    config = config_lib.apply_overrides(default(), pairs, "from --set")
    assert config.epochs == 3 and config.filters == (16, 32) and config.random_flip is False
    assert config.max_train_examples is None and config.learning_rate == 0.01


def test_yaml_round_trip(tmp_path):
    config = dataclasses.replace(smoke(), seed=7)
    path = tmp_path / "config.yaml"
    path.write_text(config_lib.dump_yaml("vision", "classification", "smoke", config))
    reloaded = config_lib.apply_overrides(default(), config_lib.load_yaml_overrides(path), "from --config")
    assert reloaded == config


def test_set_pair_without_equals_sign():
    with pytest.raises(ConfigError, match=r"Received: 'epochs'. Expected the form key=value"):
        config_lib.parse_set_pairs(["epochs"])


def test_validation_names_the_key_and_the_fix():
    with pytest.raises(ConfigError, match=r"Received: dropout_rate=1.5. Expected a number in \[0, 1\)\. Fix it"):
        dataclasses.replace(default(), dropout_rate=1.5)
    with pytest.raises(ConfigError, match=r"filters=\(\)"):
        dataclasses.replace(default(), filters=())
