"""The configs and presets of the nlp tasks that generate text, `language_model` and `translation`
(`GENERATION_TASKS`, which `apps/nlp/config.py` adds to the app's TASKS). No TensorFlow here."""

import dataclasses
import typing

from shared.config import SupervisedConfig, TaskSpec, check_choice, check_heads, check_range
from shared.errors import ConfigError

LANGUAGE_MODELS = ("transformer", "lstm")
DECODINGS = ("greedy", "beam")


@dataclasses.dataclass(frozen=True)
class LanguageModelConfig(SupervisedConfig):
    """A character language model: the first `1 - validation_fraction` of the text trains, the rest validates
    (nanoGPT's 90/10 split of Tiny Shakespeare; no shuffling across the cut, so no leak).

    Training reads windows of `sequence_length + 1` characters starting every `window_stride` characters,
    shuffled each epoch. `max_train_seconds` stops training once that much wall time has passed (the
    benchmark's budget), after the batch that crosses it, with a learning rate that follows the clock.
    """

    text_file: str = "input.txt"  # inside --data-dir: Tiny Shakespeare's file, or any UTF-8 text of your own
    model: str = "transformer"
    sequence_length: int = 128  # the context: characters the model sees at once
    window_stride: int = 64
    embedding_dim: int = 192
    num_layers: int = 4
    num_heads: int = 4
    intermediate_dim: int = 768
    lstm_units: int = 512
    dropout_rate: float = 0.1
    clipnorm: typing.Optional[float] = 1.0  # as every benchmark here ran (the presets' learning rates are high)
    max_validation_windows: typing.Optional[int] = None  # None: every window of the validation text
    sample_every_epochs: int = 2  # log generated samples from `sample_prompts` to MLflow this often (0: never)
    sample_prompts: typing.Tuple[str, ...] = ("ROMEO:", "First Citizen:", "KING HENRY VI:")
    sample_characters: int = 300
    sample_temperature: float = 0.8
    sample_top_k: int = 0  # 0: the whole vocabulary
    validation_fraction: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        check_choice("model", self.model, LANGUAGE_MODELS)
        check_range("sequence_length", self.sequence_length, 2)
        check_range("window_stride", self.window_stride, 1)
        for name in ("embedding_dim", "num_layers", "num_heads", "intermediate_dim", "lstm_units"):
            check_range(name, getattr(self, name), 1)
        check_heads(self.embedding_dim, self.num_heads)
        check_range("dropout_rate", self.dropout_rate, 0, 1, high_inclusive=False)
        check_range("max_validation_windows", self.max_validation_windows, 1)
        check_range("sample_every_epochs", self.sample_every_epochs, 0)
        check_range("sample_characters", self.sample_characters, 1)
        check_range("sample_temperature", self.sample_temperature, 0, low_inclusive=False)
        check_range("sample_top_k", self.sample_top_k, 0)
        check_range("validation_fraction", self.validation_fraction, 0, 1,
                    low_inclusive=False, high_inclusive=False)


@dataclasses.dataclass(frozen=True)
class TranslationConfig(SupervisedConfig):
    """English to Spanish: a seeded split of the pairs (the same English sentence never in two splits),
    a WordPiece vocabulary per language learned from the training pairs, an encoder-decoder transformer.

    Serving decodes inside the graph: greedy by default, `decoding=beam` with `num_beams`; at most
    `max_output_tokens` Spanish tokens.
    """

    pairs_file: str = "spa-eng/spa.txt"  # inside --data-dir: english<TAB>spanish per line (more columns ignored)
    test_fraction: float = 0.05
    source_vocabulary_size: int = 5000
    target_vocabulary_size: int = 6000
    vocabulary_sentences: typing.Optional[int] = 20000  # training pairs the vocabularies are learned from
    sequence_length: int = 24  # tokens per sentence (longer ones are cut in training)
    max_output_tokens: int = 24
    embedding_dim: int = 192
    num_layers: int = 2
    num_heads: int = 6
    intermediate_dim: int = 768
    dropout_rate: float = 0.1
    label_smoothing: float = 0.1
    decoding: str = "greedy"
    num_beams: int = 4
    clipnorm: typing.Optional[float] = 1.0  # as every benchmark here ran (the presets' learning rates are high)
    max_bleu_examples: typing.Optional[int] = None  # test sentences scored for BLEU/chrF: a seeded sample (None: all)
    num_sample_translations: int = 20
    validation_fraction: float = 0.05

    def __post_init__(self):
        super().__post_init__()
        check_range("test_fraction", self.test_fraction, 0, 1, low_inclusive=False, high_inclusive=False)
        if self.test_fraction + self.validation_fraction >= 1:
            raise ConfigError(
                f"Invalid split. Received: test_fraction={self.test_fraction}, validation_fraction="
                f"{self.validation_fraction}. Expected them to leave pairs to train on (sum below 1). "
                "Fix it with --set test_fraction=0.05 --set validation_fraction=0.05."
            )
        check_range("source_vocabulary_size", self.source_vocabulary_size, 10)
        check_range("target_vocabulary_size", self.target_vocabulary_size, 10)
        check_range("vocabulary_sentences", self.vocabulary_sentences, 1)
        check_range("sequence_length", self.sequence_length, 2)
        check_range("max_output_tokens", self.max_output_tokens, 1)
        for name in ("embedding_dim", "num_layers", "num_heads", "intermediate_dim"):
            check_range(name, getattr(self, name), 1)
        check_heads(self.embedding_dim, self.num_heads)
        check_range("dropout_rate", self.dropout_rate, 0, 1, high_inclusive=False)
        check_range("label_smoothing", self.label_smoothing, 0, 1, high_inclusive=False)
        check_choice("decoding", self.decoding, DECODINGS)
        check_range("num_beams", self.num_beams, 1)
        check_range("max_bleu_examples", self.max_bleu_examples, 1)
        check_range("num_sample_translations", self.num_sample_translations, 0)


def language_model_default():
    """A 4-layer decoder-only transformer (128 wide, 0.8M weights) over 128 characters, trained for 30 minutes of
    wall time (the benchmark's budget; the learning rate follows the clock: `shared.callbacks.TimeBudget`).
    Measured on 2 shared cores: about 6,000 characters a second; XLA (jit_compile) was slower here. Early stopping
    (patience 3) keeps the best epoch: on a quiet machine the 30 minutes buy 12 epochs and the validation loss
    turns up after the 7th (1.556 nats/char, then 1.609 at the 12th), where a loaded machine stopped after 5."""
    return LanguageModelConfig(epochs=100, batch_size=32, embedding_dim=128, intermediate_dim=512, dropout_rate=0.0,
                               learning_rate=2e-3, optimizer="adamw", weight_decay=0.01, max_train_seconds=1800.0,
                               early_stopping_patience=3)


def language_model_lstm():
    """The recurrent baseline (char-rnn): two LSTM layers, the same budget."""
    return dataclasses.replace(language_model_default(), model="lstm", num_layers=2, lstm_units=512,
                               dropout_rate=0.1, weight_decay=0.0, optimizer="adam")


def language_model_smoke():
    """A tiny transformer over a slice of the text: seconds."""
    return dataclasses.replace(language_model_default(), epochs=2, sequence_length=32,
                               window_stride=32, embedding_dim=32, num_layers=1, num_heads=2, intermediate_dim=64,
                               max_train_examples=256, max_validation_windows=64, max_train_seconds=None,
                               sample_every_epochs=1, sample_characters=40, learning_rate=3e-3,
                               early_stopping_patience=0)


def language_model_lstm_smoke():
    return dataclasses.replace(language_model_smoke(), model="lstm", num_layers=1, lstm_units=32)


def translation_default():
    """Two encoder and two decoder layers 192 wide over 5,000 English and 6,000 Spanish word pieces, trained for
    20 minutes of wall time (the benchmark's budget; the learning rate follows the clock). On 2 shared cores a
    step of 64 pairs takes about half a second, so the budget is one or two passes over Tatoeba: the model is
    kept small enough to see most pairs rather than large enough to fit them all."""
    return TranslationConfig(epochs=30, batch_size=64, learning_rate=1e-3, optimizer="adamw", weight_decay=0.01,
                             max_train_seconds=1200.0, early_stopping_patience=0, max_bleu_examples=2000)


def translation_beam():
    return dataclasses.replace(translation_default(), decoding="beam")


def translation_smoke():
    """A tiny transformer on a few thousand pairs: seconds."""
    return dataclasses.replace(translation_default(), epochs=2, max_train_seconds=None,
                               max_train_examples=2000, max_test_examples=64, max_bleu_examples=64,
                               source_vocabulary_size=500, target_vocabulary_size=500, sequence_length=12,
                               max_output_tokens=12, embedding_dim=32, num_layers=1, num_heads=2,
                               intermediate_dim=64, learning_rate=2e-3, num_sample_translations=5)


def translation_beam_smoke():
    return dataclasses.replace(translation_smoke(), decoding="beam", num_beams=2)


GENERATION_TASKS = {  # after text_classification and transfer in TASKS
    "language_model": TaskSpec(
        description="Character language model (transformer or LSTM) on Tiny Shakespeare or your text; "
                    "serves generate (prompt, length, temperature/top-k, seed) and logits.",
        config_class=LanguageModelConfig,
        presets={"default": language_model_default, "lstm": language_model_lstm, "smoke": language_model_smoke,
                 "lstm_smoke": language_model_lstm_smoke},
        task_class="apps.nlp.language_model:LanguageModelTask",
    ),
    "translation": TaskSpec(
        description="English to Spanish (Tatoeba pairs or your tab-separated pairs), encoder-decoder transformer "
                    "over WordPiece; serves English text -> Spanish text (greedy or beam, in the graph).",
        config_class=TranslationConfig,
        presets={"default": translation_default, "beam": translation_beam, "smoke": translation_smoke,
                 "beam_smoke": translation_beam_smoke},
        task_class="apps.nlp.translation:TranslationTask",
    ),
}
