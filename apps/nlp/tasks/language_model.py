"""Task 4, `language_model`: characters in, the next character's distribution out (Tiny Shakespeare).

The text is cut once, nanoGPT's way: the first 90% trains, the last 10% validates (`validation_fraction`).
Training reads windows of `sequence_length + 1` characters; the loss is the mean cross-entropy of every
next character in nats, so `val_loss` is the headline metric itself (perplexity is its exponential).

Serving (strings in, the tokenizer in the graph, `apps.nlp.characters`):
- `serving_default` / `generate`: `text` (prompts), `num_characters`, `temperature`, `top_k` (0: all) and
  `seed` -> `text` (prompt and continuation) and `completion`. Sampling is stateless in `(seed, position)`
  (`apps.nlp.generation.SeededSampler`), so a request reproduces exactly in any process. The model sees
  the last `sequence_length` characters, so prompts and outputs may be of any length.
- `logits`: `text` -> `logits [batch, length, vocabulary]` for each character after the start newline
  (the first `sequence_length`), `log_likelihood` (nats, summed) and `num_characters` scored.
"""

import keras
import mlflow
import numpy as np
import tensorflow as tf

from apps.nlp import corpora, generation
from apps.nlp.characters import CharacterTokenizer, learn_vocabulary
from apps.nlp.sequence_models import build_character_model
from shared import data as shared_data
from shared.app import Data, DatasetRecord, DataSource, Endpoint, Report, Task
from shared.export import seed_spec
from shared.optimizers import build_optimizer

EXAMPLE_PROMPTS = ["ROMEO:", "", "Wherefore art thou, \u00e9t\u00e9 \U0001F600?"]  # the export check: empty, unseen chars


def generate_signature():
    return [tf.TensorSpec([None], tf.string, name="text"), tf.TensorSpec([], tf.int32, name="num_characters"),
            tf.TensorSpec([], tf.float32, name="temperature"), tf.TensorSpec([], tf.int32, name="top_k"),
            seed_spec()]


def make_generate(model, tokenizer, context):
    """`generate(text, num_characters, temperature, top_k, seed) -> {"text", "completion"}` as a graph function."""

    def generate(text, num_characters, temperature, top_k, seed):
        prompts = tokenizer(text)
        lengths = tf.cast(prompts.row_lengths(), tf.int32)
        num_characters = tf.maximum(num_characters, 0)
        buffer = tf.pad(prompts.to_tensor(), [[0, 0], [0, num_characters]])
        mask = tf.sequence_mask(lengths, tf.shape(buffer)[1])

        def next_logits(prompt, cache, index):
            window = prompt[:, tf.maximum(index - context, 0):index]  # only the last `context` characters
            return model(window, training=False)[:, -1, :], None, cache

        sampler = generation.SeededSampler(seed, temperature, top_k)
        buffer = sampler(next_logits, buffer, index=tf.reduce_min(lengths), mask=mask)
        completion = generation.generated_part(buffer, lengths, tf.fill(tf.shape(lengths), num_characters))
        whole = generation.generated_part(buffer, tf.ones_like(lengths), lengths - 1 + num_characters)
        return {"text": tokenizer.detokenize(whole), "completion": tokenizer.detokenize(completion)}

    return generate


def make_logits(model, tokenizer, context):
    def logits(text):
        ids = tokenizer(text)[:, :context + 1]
        dense = ids.to_tensor()
        inputs, targets = dense[:, :-1], dense[:, 1:]
        scored = tf.sequence_mask(tf.cast(ids.row_lengths(), tf.int32) - 1, tf.shape(targets)[1])
        outputs = model(inputs, training=False)
        log_probabilities = tf.gather(tf.nn.log_softmax(outputs), targets, batch_dims=2)
        log_likelihood = tf.reduce_sum(tf.where(scored, log_probabilities, 0.0), axis=1)
        return {"logits": outputs, "log_likelihood": log_likelihood,
                "num_characters": tf.reduce_sum(tf.cast(scored, tf.int32), axis=1)}

    return logits


class LanguageModelTask(Task):
    app = "nlp"
    name = "language_model"
    headline = ("validation_loss_nats", "min")  # nats per character of the held-out text `evaluate` scores

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        _text, path = corpora.read_text(data_dir, config.text_file, minimum_characters(config))
        return DataSource.files(path.parent)

    def build_data(self, config, source):
        text, path = corpora.read_text(str(source.path), config.text_file, minimum_characters(config))
        cut = int(len(text) * (1 - config.validation_fraction))
        train_text, validation_text = text[:cut], text[cut:]
        vocabulary = learn_vocabulary(train_text)
        tokenizer = CharacterTokenizer(vocabulary)
        length = config.sequence_length + 1
        train_windows = windows(tokenizer.encode_numpy(train_text), length, config.window_stride)
        if config.max_train_examples and config.max_train_examples < len(train_windows):
            keep = np.random.default_rng(config.seed).permutation(len(train_windows))[:config.max_train_examples]
            train_windows = train_windows[np.sort(keep)]
        validation_windows = windows(tokenizer.encode_numpy(validation_text), length, length)
        validation_windows = validation_windows[:config.max_validation_windows]
        chunks = line_chunks(validation_text, config.sequence_length)[:config.max_validation_windows]
        records = [DatasetRecord(path.name, source.uri, split, count, shared_data.fingerprint_arrays(array))
                   for split, count, array in (("train", len(train_text), train_windows),
                                               ("validation", len(validation_text), validation_windows))]
        info = {"vocabulary": vocabulary, "train_characters": len(train_text),
                "validation_characters": len(validation_text), "num_train_windows": len(train_windows)}
        return Data(train=window_dataset(train_windows, config.batch_size, shuffle=True, seed=config.seed),
                    validation=window_dataset(validation_windows, config.batch_size),
                    test={"chunks": np.array(chunks, dtype=object)}, records=records, info=info)

    # === Model ===

    def build_model(self, config, data):
        model = build_character_model(
            len(data.info["vocabulary"]), model=config.model, sequence_length=config.sequence_length,
            embedding_dim=config.embedding_dim, num_layers=config.num_layers, num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim, lstm_units=config.lstm_units, dropout_rate=config.dropout_rate)
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    def metric_callbacks(self, config, data):
        return [SampleLogger(config, data.info["vocabulary"])] if config.sample_every_epochs else []

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        tokenizer = CharacterTokenizer(info["vocabulary"])
        generate = Endpoint(make_generate(model, tokenizer, config.sequence_length), generate_signature())
        logits = Endpoint(make_logits(model, tokenizer, config.sequence_length),
                          [tf.TensorSpec([None], tf.string, name="text")])
        return {"serving_default": generate, "generate": generate, "logits": logits}

    def example_inputs(self, data):
        return {"text": np.array(EXAMPLE_PROMPTS, dtype=object), "num_characters": np.int32(20),
                "temperature": np.float32(0.8), "top_k": np.int32(10), "seed": np.int32(7)}

    def signature_examples(self, data):
        return {"serving_default": self.example_inputs(data), "generate": self.example_inputs(data),
                "logits": {"text": np.array([*EXAMPLE_PROMPTS, *data.test["chunks"][:2]], dtype=object)}}

    def evaluate(self, serving, data, config):
        scores = serving.batched(config.batch_size, signature="logits", text=data.test["chunks"])
        loss = float(-scores["log_likelihood"].sum() / scores["num_characters"].sum())
        metrics = {"validation_loss_nats": loss, "validation_perplexity": float(np.exp(loss)),
                   "validation_bits_per_character": float(loss / np.log(2)),
                   "validation_characters_scored": float(scores["num_characters"].sum())}
        samples = sample(serving["generate"], config)
        return Report(metrics=metrics, tables={"samples.json": samples})


def minimum_characters(config):
    """A training window and a validation window (`sequence_length + 1` each) after the 90/10 cut."""
    return int(np.ceil((config.sequence_length + 1) / min(config.validation_fraction, 1 - config.validation_fraction)))


def line_chunks(text, length):
    """Non-overlapping `length`-character pieces of `text`, each starting right after a newline.

    What `evaluate` scores through the `logits` signature, which reads every text as following a newline
    (the START token): so each scored character has its true context, as in Keras' `val_loss` (the
    characters between a piece's end and the next line are skipped, about one line in `length`)."""
    chunks, start = [], text.find("\n") + 1
    while 0 < start and start + length <= len(text):
        chunks.append(text[start:start + length])
        start = text.find("\n", start + length) + 1
    return chunks


def windows(ids, length, stride):
    """Every `length`-long slice of `ids` starting each `stride` ids, as an int32 `[count, length]` array."""
    starts = np.arange(0, len(ids) - length + 1, stride)
    return ids[starts[:, None] + np.arange(length)[None, :]]


def window_dataset(windows_array, batch_size, shuffle=False, seed=0):
    """(inputs, next characters) batches: each window minus its last, and minus its first, character."""
    dataset = tf.data.Dataset.from_tensor_slices(windows_array)
    return shared_data.pipeline(dataset, batch_size, shuffle=shuffle, seed=seed,
                                map_fn=lambda window: (window[:-1], window[1:]))


def sample(generate, config, seed=0):
    """`{"prompt": [...], "sample": [...]}` from the config's fixed prompts, through a generate function."""
    prompts = list(config.sample_prompts)
    outputs = generate(text=np.array(prompts, dtype=object), num_characters=np.int32(config.sample_characters),
                       temperature=np.float32(config.sample_temperature), top_k=np.int32(config.sample_top_k),
                       seed=np.int32(seed))
    return {"prompt": prompts, "sample": [text.decode("utf-8", "replace") for text in outputs["text"]]}


class SampleLogger(keras.callbacks.Callback):
    """Every `sample_every_epochs` epochs, the samples of the fixed prompts as `samples/epoch_NNN.txt` in MLflow
    (nothing outside a run), so the run shows how the text took shape."""

    def __init__(self, config, vocabulary):
        super().__init__()
        self.config, self.tokenizer = config, CharacterTokenizer(vocabulary)
        self.generate = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.config.sample_every_epochs or mlflow.active_run() is None:
            return
        if self.generate is None:
            self.generate = tf.function(make_generate(self.model, self.tokenizer, self.config.sequence_length),
                                        input_signature=generate_signature())
        samples = sample(lambda **inputs: {key: value.numpy() for key, value in self.generate(**inputs).items()},
                         self.config)
        text = "\n\n".join(f"=== {prompt!r} ===\n{output}" for prompt, output in zip(samples["prompt"],
                                                                                 samples["sample"]))
        mlflow.log_text(text, f"samples/epoch_{epoch + 1:03d}.txt")
