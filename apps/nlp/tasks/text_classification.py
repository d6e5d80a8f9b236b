"""Task 1, `text_classification`: a message in, its class out (SMS spam or ham, or any labelled text).

A WordPiece vocabulary is learned from the training split only (`apps.nlp.vocabulary`) and becomes the
model's first layer (keras-hub's `WordPieceTokenizer`), under a CNN, bidirectional RNN or small
transformer (`apps.nlp.models`, by `config.model`) trained with balanced class weights by default.
The model takes raw strings, so training, the logged model and the export run one object.
Reading, splitting, serving and the metrics are `apps.nlp.tasks.base`'s.
"""

from apps.nlp import models
from apps.nlp.tasks.base import TextClassifierTask
from apps.nlp.vocabulary import build_tokenizer, coverage, learn_vocabulary
from shared import classifier


class TextClassificationTask(TextClassifierTask):
    name = "text_classification"

    def text_info(self, config, split):
        vocabulary = learn_vocabulary(split.train.texts, config.vocabulary_size, lowercase=config.lowercase)
        return {"vocabulary": vocabulary, "vocabulary_size": len(vocabulary),
                "validation_vocabulary_coverage": round(coverage(self.tokenizer(config, vocabulary),
                                                                 split.validation.texts), 4)
                if len(split.validation) else None}

    def tokenizer(self, config, vocabulary):
        return build_tokenizer(vocabulary, sequence_length=config.sequence_length, lowercase=config.lowercase)

    def build_model(self, config, data):
        model = models.build_classifier(
            self.tokenizer(config, data.info["vocabulary"]), num_classes=len(data.info["class_names"]),
            model=config.model, sequence_length=config.sequence_length, embedding_dim=config.embedding_dim,
            dropout_rate=config.dropout_rate, filters=config.filters, kernel_sizes=config.kernel_sizes,
            rnn_cell=config.rnn_cell, rnn_units=config.rnn_units, num_layers=config.num_layers,
            num_heads=config.num_heads, intermediate_dim=config.intermediate_dim, char_filters=config.char_filters,
            char_sequence_length=config.char_sequence_length, char_kernel_sizes=config.char_kernel_sizes,
            hidden_units=config.hidden_units)
        return classifier.compile_classifier(model, config, data.train)
