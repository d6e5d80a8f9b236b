"""Task 3, `translation`: English sentences in, Spanish sentences out (Tatoeba's spa-eng pairs).

Split: the distinct English sentences are shuffled with the seed and cut into train / validation / test,
so a sentence Tatoeba lists with several Spanish translations never sits on both sides of a cut (all its
references stay together). Each language gets its own WordPiece vocabulary, learned from the training
pairs only (`apps.nlp.vocabulary`): English lowercased, Spanish cased (its output is what users read).

The model (`apps.nlp.sequence_models.build_translation_model`) learns with teacher forcing:
`[START] y1 .. yn` in, `y1 .. yn [END]` out. Serving runs the tokenizers and the decoding loop in the
graph: `text` (English, `tf.string [None]`) -> `translation` (Spanish) and `num_tokens`; greedy by
default, beam search with `decoding=beam`, at most `max_output_tokens` tokens.

Evaluation translates the test sentences through the served graph and scores corpus BLEU and chrF with
sacrebleu (its default 13a tokenization for BLEU, chrF with character 6-grams and beta 2), every Spanish
translation of a test sentence a reference, plus a table of sample translations.
"""

from pathlib import Path

import numpy as np
import sacrebleu
import tensorflow as tf

from apps.nlp import corpora, generation, vocabulary
from apps.nlp.sequence_models import MaskedCrossentropy, build_translation_model
from shared import data as shared_data
from shared.app import Data, DatasetRecord, DataSource, Endpoint, Report, Task
from shared.optimizers import build_optimizer

START, END = "[START]", "[END]"
TARGET_RESERVED = (*vocabulary.RESERVED_TOKENS, START, END)
SOURCE_LOWERCASE, TARGET_LOWERCASE = True, False
EXAMPLE_TEXTS = ["I am cold.", "", "Where is the cat? \u00e9t\u00e9 \U0001F600", "word " * 60]  # empty, unseen, long


class TranslationTask(Task):
    app = "nlp"
    name = "translation"
    headline = ("test_bleu", "max")  # corpus BLEU of the served translations of the test sentences

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        _sources, _targets, path = corpora.read_pairs(data_dir, config.pairs_file)
        return DataSource.files(path.parents[len(Path(config.pairs_file).parts) - 1])

    def build_data(self, config, source):
        sources, targets, path = corpora.read_pairs(str(source.path), config.pairs_file)
        splits = split_pairs(sources, targets, config)
        train_sources, train_targets = splits["train"]
        sample = vocabulary_sample(len(train_sources), config)
        source_vocabulary = vocabulary.learn_vocabulary([train_sources[index] for index in sample],
                                                        config.source_vocabulary_size, lowercase=SOURCE_LOWERCASE)
        target_vocabulary = vocabulary.learn_vocabulary([train_targets[index] for index in sample],
                                                        config.target_vocabulary_size, lowercase=TARGET_LOWERCASE,
                                                        reserved_tokens=TARGET_RESERVED)
        info = {"source_vocabulary": source_vocabulary, "target_vocabulary": target_vocabulary,
                **{f"num_{split}_pairs": len(pairs[0]) for split, pairs in splits.items()}}
        featurize = teacher_forcing(config, info)
        datasets = {split: shared_data.pipeline(
            tf.data.Dataset.from_tensor_slices((np.array(pairs[0], dtype=object), np.array(pairs[1], dtype=object))),
            config.batch_size, shuffle=split == "train", seed=config.seed, batch_map_fn=featurize)
            for split, pairs in splits.items() if split != "test"}
        test_sources, test_targets = splits["test"]
        references = {}
        for english, spanish in zip(test_sources, test_targets):
            references.setdefault(english, []).append(spanish)
        test = {"sources": np.array(list(references), dtype=object), "references": list(references.values())}
        records = [DatasetRecord(path.name, source.uri, split, len(pairs[0]),
                                 shared_data.fingerprint_arrays(np.frombuffer(
                                     "\n".join(map("\t".join, zip(*pairs))).encode("utf-8"), np.uint8)))
                   for split, pairs in splits.items()]
        return Data(train=datasets["train"], validation=datasets["validation"], test=test, records=records, info=info)

    # === Model ===

    def build_model(self, config, data):
        model, _encoder, _decoder = build_translation_model(
            len(data.info["source_vocabulary"]), len(data.info["target_vocabulary"]),
            sequence_length=config.sequence_length, max_output_tokens=config.max_output_tokens,
            embedding_dim=config.embedding_dim, num_layers=config.num_layers, num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim, dropout_rate=config.dropout_rate)
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)),
                      loss=MaskedCrossentropy(label_smoothing=config.label_smoothing))
        return model

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        source_tokenizer, target_tokenizer = tokenizers(config, info)
        encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
        start_id, end_id = target_tokenizer.token_to_id(START), target_tokenizer.token_to_id(END)
        sampler = generation.deterministic_sampler(config.decoding, config.num_beams)

        def translate(text):
            source_ids = source_tokenizer(text)
            encoded, source_mask = encoder(source_ids, training=False), tf.not_equal(source_ids, vocabulary.PAD_ID)
            batch = tf.shape(text)[0]
            prompt = tf.concat([tf.fill([batch, 1], start_id), tf.zeros([batch, config.max_output_tokens], tf.int32)],
                               axis=1)

            def next_logits(prompt, cache, index):
                encoded, source_mask = cache
                return decoder([prompt, encoded, source_mask], training=False)[:, index - 1, :], None, cache

            output = sampler(next_logits, prompt, cache=(encoded, source_mask), index=1, stop_token_ids=[end_id])
            tokens = output[:, 1:]
            ended = tf.equal(tokens, end_id)
            lengths = tf.where(tf.reduce_any(ended, axis=1), tf.argmax(tf.cast(ended, tf.int32), axis=1,
                                                                        output_type=tf.int32),
                               config.max_output_tokens)
            pieces = tf.RaggedTensor.from_tensor(tokens, lengths=lengths)
            return {"translation": join_pieces(target_tokenizer.detokenize(pieces)), "num_tokens": lengths}

        return {"serving_default": Endpoint(translate, [tf.TensorSpec([None], tf.string, name="text")])}

    def example_inputs(self, data):
        return {"text": np.array([*EXAMPLE_TEXTS, *data.test["sources"][:4]], dtype=object)}

    def evaluate(self, serving, data, config):
        sources, references = data.test["sources"], data.test["references"]
        chosen = bleu_sample(len(sources), config.max_bleu_examples, config.seed)
        sources, references = sources[chosen], [references[index] for index in chosen]
        translations = [text.decode("utf-8") for text in
                        serving.batched(config.batch_size, text=sources)["translation"]]
        bleu, chrf = corpus_scores(translations, references)
        metrics = {"test_bleu": bleu, "test_chrf": chrf, "test_sentences_scored": float(len(sources)),
                   "test_mean_references": float(np.mean([len(refs) for refs in references])),
                   "test_mean_source_words": float(np.mean([len(str(text).split()) for text in sources]))}
        shown = slice(0, config.num_sample_translations)
        table = {"english": [str(text) for text in sources[shown]], "translation": translations[shown],
                 "references": [" | ".join(refs) for refs in references[shown]]}
        return Report(metrics=metrics, tables={"sample_translations.json": table})


def split_pairs(sources, targets, config):
    """`{"train", "validation", "test"}: (sources, targets)`, cut by distinct English sentence with the seed."""
    distinct = sorted(set(sources))
    order = np.random.default_rng(config.seed).permutation(len(distinct))
    num_test = max(1, int(round(len(distinct) * config.test_fraction)))
    num_validation = max(1, int(round(len(distinct) * config.validation_fraction)))
    split_of = {}
    for rank, position in enumerate(order):
        split_of[distinct[position]] = ("test" if rank < num_test else
                                        "validation" if rank < num_test + num_validation else "train")
    splits = {name: ([], []) for name in ("train", "validation", "test")}
    for english, spanish in zip(sources, targets):
        splits[split_of[english]][0].append(english)
        splits[split_of[english]][1].append(spanish)
    limits = {"train": config.max_train_examples, "test": config.max_test_examples}
    for name, limit in limits.items():
        if limit and limit < len(splits[name][0]):
            keep = np.sort(np.random.default_rng(config.seed + 1).permutation(len(splits[name][0]))[:limit])
            splits[name] = tuple([side[index] for index in keep] for side in splits[name])
    return splits


def vocabulary_sample(num_train, config):
    """The training pairs the vocabularies are learned from: all, or a seeded `vocabulary_sentences` of them
    (keras-hub's learner takes minutes on all of Tatoeba; 20,000 sentences spell nearly every piece)."""
    if not config.vocabulary_sentences or config.vocabulary_sentences >= num_train:
        return np.arange(num_train)
    return np.sort(np.random.default_rng(config.seed).permutation(num_train)[:config.vocabulary_sentences])


class SourceTokenizer:
    """English text -> int32 ids `[batch, width]`, padded with PAD_ID: the width is the batch's longest sentence
    (at most `sequence_length`) rounded up to a multiple of 8.

    Padding to the batch's longest sentence instead of `sequence_length` halves the work on Tatoeba's short
    sentences; rounding keeps the shapes Keras traces its training step for to a handful. A batch of empty
    strings still gets one column of padding.
    """

    def __init__(self, config, info):
        self.tokenizer = vocabulary.build_tokenizer(info["source_vocabulary"], lowercase=SOURCE_LOWERCASE)
        self.sequence_length = config.sequence_length

    def __call__(self, text):
        return pad_to_multiple(self.tokenizer(text)[:, :self.sequence_length], self.sequence_length)


def tokenizers(config, info):
    source = SourceTokenizer(config, info)
    target = vocabulary.build_tokenizer(info["target_vocabulary"], lowercase=TARGET_LOWERCASE,
                                       special_tokens=list(TARGET_RESERVED))
    return source, target


def teacher_forcing(config, info):
    """A batch map `(english, spanish) -> ({encoder ids, decoder ids}, next target ids)`."""
    source_tokenizer, target_tokenizer = tokenizers(config, info)
    start_id, end_id = target_tokenizer.token_to_id(START), target_tokenizer.token_to_id(END)

    def featurize(english, spanish):
        pieces = target_tokenizer(spanish)[:, :config.sequence_length - 1]
        batch = pieces.nrows()
        starts, ends = tf.fill([batch, 1], start_id), tf.fill([batch, 1], end_id)
        target = tf.concat([tf.RaggedTensor.from_tensor(starts), pieces, tf.RaggedTensor.from_tensor(ends)], axis=1)
        target = pad_to_multiple(target, config.sequence_length, plus_one=True)
        features = {"encoder_token_ids": source_tokenizer(english), "decoder_token_ids": target[:, :-1]}
        return features, target[:, 1:]

    return featurize


def pad_to_multiple(ragged, limit, multiple=8, plus_one=False):
    """Dense ids padded with PAD_ID to a width of `multiple * k`, at most `limit` (`+ 1` for targets that are
    shifted by one); the rows are at most that long already."""
    extra = 1 if plus_one else 0
    width = tf.cast(ragged.bounding_shape(axis=1), tf.int32) - extra
    width = tf.minimum(tf.maximum((width + multiple - 1) // multiple, 1) * multiple, limit) + extra
    return ragged.to_tensor(shape=tf.stack([ragged.nrows(out_type=tf.int32), width]))


def join_pieces(text):
    """WordPiece detokenization puts spaces around punctuation: `¿ dónde está ?` -> `¿dónde está?`."""
    text = tf.strings.regex_replace(text, r" ([.,!?;:%)\]»])", r"\1")
    return tf.strings.strip(tf.strings.regex_replace(text, r"([¿¡(\[«]) ", r"\1"))


def bleu_sample(count, limit, seed):
    """Indices of the test sentences scored: all of them, or a seeded random `limit` of them in file order.
    Tatoeba's file runs from short to long sentences, so the first `limit` would be the shortest ones."""
    if not limit or count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).permutation(count)[:limit])


def corpus_scores(translations, references):
    """Corpus BLEU and chrF (sacrebleu's defaults) with a variable number of references per sentence."""
    depth = max(len(refs) for refs in references)
    streams = [[refs[index] if index < len(refs) else None for refs in references] for index in range(depth)]
    bleu = sacrebleu.corpus_bleu(translations, streams)
    chrf = sacrebleu.corpus_chrf(translations, streams)
    return float(bleu.score), float(chrf.score)
