"""Configs: presets, YAML and --set overrides, type coercion, validation messages."""

import dataclasses
import re

import pytest

from apps.vision.classification.config import ClassificationConfig, default, smoke
from shared import checks
from shared import config as config_lib
from shared.errors import ConfigError
from tests.conftest import run_cli


def test_presets_differ_only_where_they_say():
    changed = {field for field in config_lib.field_names(ClassificationConfig)
               if getattr(default(), field) != getattr(smoke(), field)}
    assert changed == {"epochs", "max_train_examples", "max_test_examples", "filters", "convs_per_stage", "dense_units",
                       "warmup_epochs", "precision"}


def test_set_pairs_are_coerced_to_field_types():
    pairs = config_lib.parse_set_pairs(["epochs=3", "filters=16,32", "convs_per_stage=1,2", "random_flip=false",
                                        "max_train_examples=none", "learning_rate=0.01"])
    config = config_lib.apply_overrides(default(), pairs, "from --set")
    assert config.epochs == 3 and config.filters == (16, 32) and config.convs_per_stage == (1, 2)
    assert config.random_flip is False and not config.averages_mirror
    assert config.max_train_examples is None and config.learning_rate == 0.01
    one_count = config_lib.apply_overrides(default(), config_lib.parse_set_pairs(["convs_per_stage=2"]), "from --set")
    assert one_count.convs_per_stage == (2,) and one_count.stage_convs == (2, 2, 2)


def test_yaml_round_trip(tmp_path):
    config = dataclasses.replace(smoke(), seed=7)
    path = tmp_path / "config.yaml"
    path.write_text(config_lib.dump_yaml("vision", "classification", "smoke", config))
    reloaded = config_lib.apply_overrides(default(), config_lib.load_yaml_overrides(path), "from --config")
    assert reloaded == config


def test_epochs_below_the_warmup_lowers_it_only_when_the_user_did_not_set_it(capsys):
    config = config_lib.apply_overrides(default(), config_lib.parse_set_pairs(["epochs=1"]), "from --set")
    assert (config.epochs, config.warmup_epochs) == (1, 0)
    assert "dlsuite: note: warmup_epochs lowered from 1 (the preset's) to 0 to fit epochs=1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"Received: warmup_epochs=1 with epochs=1\. Expected a number in \[0, 0\]: "
                                          r"warmup must end before training does\. Fix it with --set warmup_epochs=0"):
        config_lib.apply_overrides(default(), config_lib.parse_set_pairs(["epochs=1", "warmup_epochs=1"]), "from --set")


def test_set_pair_without_equals_sign():
    with pytest.raises(ConfigError, match=r"Received: 'epochs'. Expected the form key=value"):
        config_lib.parse_set_pairs(["epochs"])


def test_validation_names_the_key_and_the_fix():
    with pytest.raises(ConfigError, match=r"Received: dropout_rate=1.5. Expected a number in \[0, 1\)\. Fix it"):
        dataclasses.replace(default(), dropout_rate=1.5)
    with pytest.raises(ConfigError, match=r"filters=\(\)"):
        dataclasses.replace(default(), filters=())
    with pytest.raises(ConfigError, match=r"Received: convs_per_stage=\(1, 2\) with filters=\(16, 32, 64\)\. "
                                          r"Expected one count in \[1, 4\] for every stage, or one per stage \(3 here\)\. "
                                          r"Fix: --set convs_per_stage=2 \(two in every stage\) or --set convs_per_stage=1,2,2"):
        dataclasses.replace(default(), convs_per_stage=(1, 2))
    with pytest.raises(ConfigError, match=r"Received: ema_momentum=1\.0\. Expected a number in \(0, 1\)\. Fix it"):
        dataclasses.replace(default(), ema_momentum=1.0)


def test_mirror_images_follow_the_dataset():
    assert default().flips and default().averages_mirror  # Fashion-MNIST: clothes look the same mirrored
    mnist = dataclasses.replace(default(), dataset="mnist")
    assert not mnist.flips and not mnist.averages_mirror  # a mirrored digit is not a digit
    assert dataclasses.replace(mnist, random_flip=True).averages_mirror
    assert not dataclasses.replace(default(), test_time_flip=False).averages_mirror
    with pytest.raises(ConfigError, match=r"Received: test_time_flip=True with random_flip=None \(dataset=mnist\)"):
        dataclasses.replace(mnist, test_time_flip=True)



@pytest.mark.parametrize("values, count, expected", [
    ((), (1, None), r"Received: filters=\(\)\. Expected one or more positive integers\. Fix: --set filters=32,64\."),
    ((32, 0), (1, None), r"Received: filters=\(32, 0\)\. Expected one or more positive integers"),
    ((8, 16, 32), (1, 2), r"Expected one or two positive integers"),
    ((8,), (2, 2), r"Expected two positive integers"),
    ((1,), (2, 6), r"Expected 2 to 6 positive integers"),
])
def test_sizes_must_be_positive_integers_as_many_as_allowed(values, count, expected):
    with pytest.raises(ConfigError, match=r"^Invalid value for config key filters\. .*" + expected):
        checks.check_sizes("filters", values, "32,64", count=count)


def test_sizes_within_the_allowed_count_pass():
    checks.check_sizes("filters", (32, 64), "32,64", count=(1, 2))
    checks.check_sizes("filters", (96, 64, 48, 32), "96,64,48,32", count=(4, 4))
    checks.check_sizes("hidden_units", (), "64", count=(0, None))


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize(("content", "message"), [
    (b"1: 2\n", r"has a key that is not a name\. Received: 1 \(type int\)"),
    (b"~: 1\n", r"has a key that is not a name\. Received: None \(type NoneType\)"),
    (b"true: 1\n", r"has a key that is not a name\. Received: True \(type bool\)"),
    (b"config:\n  7: 1\n", r"has a key that is not a name\. Received: 7"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", r"is not UTF-8 text\. Received: byte 0x89 at offset 0"),
    (BOMB.encode(), r"is not valid YAML: aliases \(\*name\) are not supported, found one on line 2"),
], ids=["int key", "null key", "bool key", "saved-config int key", "binary", "alias bomb"])
def test_bad_config_files_exit_2_with_one_line(tmp_path, content, message):
    path = tmp_path / "overrides.yaml"
    path.write_bytes(content)
    result = run_cli("train", "vision", "--preset", "smoke", "--config", path, "--tracking-uri",
                     f"sqlite:///{tmp_path / 'mlflow.db'}", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(rf"^dlsuite: error: Config file {re.escape(str(path))} {message}", lines[0])
    assert len(lines[0]) < 400 and not (tmp_path / "mlflow.db").exists()  # refused before any run opened
