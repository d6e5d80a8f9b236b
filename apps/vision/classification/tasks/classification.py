"""Vision classification task: Fashion-MNIST (or MNIST) images in, class probabilities and names out.

The model (`apps/vision/classification/models.py`) takes the raw uint8 images and holds all preprocessing, so
the endpoint only calls it and names its outputs (`shared.classifier`).
"""

import tensorflow as tf

from apps.vision.classification import data as vision_data
from apps.vision.classification import models as vision_models
from apps.vision.classification import plots
from apps.vision.classification.config import batch_norm_momentum_for
from shared import classifier
from shared import data as shared_data
from shared.app import Data, Endpoint, Task


class ClassificationTask(Task):
    app = "vision"
    name = "classification"
    monitor = "val_accuracy"
    monitor_mode = "max"

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        return vision_data.data_source(config, data_dir)

    def build_data(self, config, source):
        splits, records = vision_data.split_arrays(config, source)
        test_images, test_labels = splits["test"]
        train, validation = vision_data.datasets(config, splits["train"], splits["validation"])
        return Data(train=train, validation=validation, test=(test_images, test_labels), records=records,
                    info={"class_names": vision_data.CLASS_NAMES[config.dataset],
                          "image_shape": list(vision_models.IMAGE_SHAPE), "dataset": config.dataset})

    # === Model ===

    def build_model(self, config, data):
        steps_per_epoch = shared_data.steps_per_epoch(data.train)
        model = self.network(config, len(data.info["class_names"]), steps_per_epoch)
        return classifier.compile_classifier(model, config, data.train)

    def network(self, config, num_classes, steps_per_epoch):
        """The uncompiled model `models.py` builds from the config's fields; batch normalization's momentum
        is `batch_norm_momentum`, or chosen for `steps_per_epoch` when that is None."""
        momentum = config.batch_norm_momentum
        if momentum is None:
            momentum = batch_norm_momentum_for(steps_per_epoch)
        backbone = vision_models.build_backbone(
            num_classes, filters=config.filters, stage_convs=config.stage_convs,
            pool_last_stage=config.pool_last_stage, dense_units=config.dense_units, activation=config.activation,
            dropout_rate=config.dropout_rate, conv_dropout_rate=config.conv_dropout_rate, l2=config.l2,
            batch_norm_momentum=momentum)
        augmentation = vision_models.augmentation_layers(
            random_flip=config.flips, random_translation=config.random_translation,
            random_erasing=config.random_erasing, seed=config.seed)
        return vision_models.build_model(backbone, augmentation, mirror_average=config.averages_mirror)

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        def serve(images):
            return classifier.head(model(images, training=False), info["class_names"])

        signature = [tf.TensorSpec([None, *info["image_shape"]], tf.uint8, name="images")]
        return {"serving_default": Endpoint(serve, signature)}

    def example_inputs(self, data):
        return {"images": data.test[0][:64]}

    def evaluate(self, serving, data, config, batch_size=1024):
        images, labels = data.test
        class_names = vision_data.CLASS_NAMES[config.dataset]
        report, outputs = classifier.evaluate(serving, {"images": images}, labels, class_names, batch_size)
        shown = slice(0, 32)
        report.figures["test_samples.png"] = plots.test_samples(
            images[shown], [name.decode() for name in outputs["class_names"][shown]],
            [class_names[label] for label in labels[shown]])
        return report
