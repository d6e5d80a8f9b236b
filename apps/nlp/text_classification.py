"""Task 1, `text_classification`: a message in, its class out (SMS spam or ham, or any labelled text).

A WordPiece vocabulary is learned from the training split only (`apps.nlp.vocabulary`), the messages
are tokenized once in tf.data, and a CNN, bidirectional RNN or small transformer (`apps.nlp.models`,
by `config.model`) learns from the token ids, with balanced class weights by default. The export runs
the same tokenizer inside the graph, rebuilt from the vocabulary saved in the run's info, so a client
sends raw strings. Reading, splitting, serving and the metrics are `apps.nlp.classifier`'s.
"""

from apps.nlp import models
from apps.nlp.classifier import TextClassifierTask
from apps.nlp.vocabulary import build_tokenizer, coverage, learn_vocabulary
from shared import classifier


class TextClassificationTask(TextClassifierTask):
    name = "text_classification"

    def featurizer(self, config, split):
        vocabulary = learn_vocabulary(split.train.texts, config.vocabulary_size, lowercase=config.lowercase)
        tokenizer = self._tokenizer(config, vocabulary)
        info = {"vocabulary": vocabulary, "vocabulary_size": len(vocabulary),
                "validation_vocabulary_coverage": round(coverage(tokenizer, split.validation.texts), 4)
                if len(split.validation) else None}
        return tokenizer, info

    def serving_featurizer(self, config, info):
        return self._tokenizer(config, info["vocabulary"])

    def _tokenizer(self, config, vocabulary):
        return build_tokenizer(vocabulary, sequence_length=config.sequence_length, lowercase=config.lowercase)

    def build_model(self, config, data):
        model = models.build_classifier(config, data.info["vocabulary_size"], len(data.info["class_names"]))
        return classifier.compile_classifier(model, config, data.train)

    def custom_objects(self):
        return dict(models.CUSTOM_OBJECTS)
