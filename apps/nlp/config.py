"""NLP configs and presets. No TensorFlow here: `dlsuite list` reads this module.

Four tasks, every one serving raw strings (an input `text`, `tf.string [None]`) with its tokenizer inside
the graph (`apps/nlp/README.md` tells the story):
- `text_classification`: labelled messages (SMS spam or any delimited file), CNN / BiRNN / transformer.
- `transfer`: the same data, a pretrained sentence encoder (all-MiniLM-L6-v2, offline) frozen or fine-tuned.
- `language_model`: characters of Tiny Shakespeare, a decoder-only transformer (or an LSTM).
- `translation`: English to Spanish (Tatoeba), an encoder-decoder transformer.
"""

import dataclasses
import typing

from shared.config import SupervisedConfig, TaskSpec, check_choice, check_range
from shared.errors import ConfigError

# === Text classification and transfer ===


# === Language model and translation ===


TASKS = {
}
