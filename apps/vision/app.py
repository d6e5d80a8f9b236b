"""Vision classification task: Fashion-MNIST (or MNIST) images in, class probabilities and names out.

The model (`apps/vision/models.py`) takes the raw uint8 images and holds all preprocessing, so
the endpoint only calls it and names its outputs (`shared.classifier`).
"""

import keras
import numpy as np
import tensorflow as tf

from apps.vision import data as vision_data
from apps.vision import models as vision_models
from apps.vision.layers import MirrorAverage
from shared import classifier
from shared import plots
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
        model = vision_models.build_model(config, num_classes=len(data.info["class_names"]))
        return classifier.compile_classifier(model, config, data.train)

    def custom_objects(self):
        return {keras.saving.get_registered_name(MirrorAverage): MirrorAverage}

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
        shown = np.arange(min(32, len(images)))
        predicted = [outputs["class_names"][i].decode() for i in shown]
        wrong = [name != class_names[labels[i]] for name, i in zip(predicted, shown)]
        report.figures["test_samples.png"] = plots.image_grid(images[shown], [
            f"{name}\n(true: {class_names[labels[i]]})" for name, i in zip(predicted, shown)], highlight=wrong,
            title=f"Test samples: predicted (true); the {sum(wrong)} of {len(shown)} misclassified in red")
        return report
