"""Vision classification task: Fashion-MNIST (or MNIST) images in, class probabilities and names out."""

import keras
import numpy as np
import tensorflow as tf

from apps.vision import data as vision_data
from apps.vision.models import build_cnn
from shared import data as shared_data
from shared import plots
from shared.app import Data, DatasetRecord, DataSource, Endpoint, Task
from shared.metrics import classification_report
from shared.optimizers import build_optimizer


class ClassificationTask(Task):
    app = "vision"
    name = "classification"
    monitor = "val_accuracy"
    monitor_mode = "max"

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        source = vision_data.resolve_source(config.dataset, data_dir)
        vision_data.check_source(source)
        return DataSource("tfds", config.dataset) if source == vision_data.TFDS else DataSource.files(source)

    def build_data(self, config, source):
        arrays = vision_data.load_arrays(config.dataset, source.path or vision_data.TFDS)
        train_images, train_labels = arrays["train"]
        test_images, test_labels = arrays["test"]
        train_index, validation_index = shared_data.split_indices(len(train_images), config.validation_fraction,
                                                                  config.seed)
        if config.max_train_examples:
            train_index = train_index[: config.max_train_examples]
            validation_index = validation_index[: max(1, config.max_train_examples // 8)]
        if config.max_test_examples:
            test_images, test_labels = test_images[: config.max_test_examples], test_labels[: config.max_test_examples]
        class_names = vision_data.CLASS_NAMES[config.dataset]
        to_one_hot = shared_data.one_hot(len(class_names))

        def to_features(images, labels):  # on whole batches: per-example maps cost more than the cast
            return tf.cast(images, tf.float32)[..., tf.newaxis], labels

        def examples(index):
            return tf.data.Dataset.from_tensor_slices((train_images[index], train_labels[index]))

        augmentation = []
        if config.flips:
            augmentation.append(keras.layers.RandomFlip("horizontal", seed=config.seed))
        if config.random_translation:
            augmentation.append(keras.layers.RandomTranslation(config.random_translation, config.random_translation,
                                                               fill_mode="constant", seed=config.seed))
        if config.random_erasing:
            augmentation.append(keras.layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), seed=config.seed))

        augment = shared_data.augment_with(augmentation) if augmentation else None

        def train_batch(images, labels):
            features, labels = to_features(images, labels)
            return to_one_hot(*(augment(features, labels) if augment else (features, labels)))

        def validation_batch(images, labels):
            return to_one_hot(*to_features(images, labels))

        # The uint8 arrays are already in memory: no cache, and every map runs on whole batches.
        train = shared_data.pipeline(examples(train_index), config.batch_size, shuffle=True, seed=config.seed,
                                     cache=False, batch_map_fn=train_batch)
        validation = shared_data.pipeline(examples(validation_index), config.batch_size * 2, cache=False,
                                          batch_map_fn=validation_batch)
        fingerprints = {
            split: shared_data.fingerprint_arrays(images, labels)
            for split, (images, labels) in (("train", arrays["train"]), ("test", (test_images, test_labels)))
        }
        records = [
            DatasetRecord(config.dataset, source.uri, "train", len(train_index), fingerprints["train"]),
            DatasetRecord(config.dataset, source.uri, "validation", len(validation_index), fingerprints["train"]),
            DatasetRecord(config.dataset, source.uri, "test", len(test_images), fingerprints["test"]),
        ]
        return Data(train=train, validation=validation, test=(test_images, test_labels), records=records,
                    info={"class_names": class_names, "image_shape": [28, 28], "dataset": config.dataset,
                          "test_time_flip": config.averages_mirror})

    # === Model ===

    def build_model(self, config, data):
        model = build_cnn(config, num_classes=len(data.info["class_names"]))
        steps_per_epoch = shared_data.steps_per_epoch(data.train)
        model.compile(
            optimizer=build_optimizer(config, steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )
        return model

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        class_names = tf.constant(info["class_names"])
        average_mirror = info.get("test_time_flip", False)

        def serve(images):
            pixels = tf.cast(images, tf.float32)[..., tf.newaxis]
            probabilities = model(pixels, training=False)
            if average_mirror:  # test-time augmentation: the mean over the image and its left-right mirror
                probabilities = (probabilities + model(tf.reverse(pixels, axis=[2]), training=False)) / 2
            class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return {"probabilities": probabilities, "class_ids": class_ids,
                    "class_names": tf.gather(class_names, class_ids)}

        signature = [tf.TensorSpec([None, *info["image_shape"]], tf.uint8, name="images")]
        return {"serving_default": Endpoint(serve, signature)}

    def example_inputs(self, data):
        return {"images": data.test[0][:64]}

    def evaluate(self, serving, data, config, batch_size=1024):
        images, labels = data.test
        probabilities = serving.batched(batch_size, images=images)["probabilities"]
        class_names = list(vision_data.CLASS_NAMES[config.dataset])
        report = classification_report(labels, probabilities, class_names)
        predictions = probabilities.argmax(-1)
        shown = np.arange(min(32, len(images)))
        report.figures["test_samples.png"] = plots.image_grid(
            images[shown], [f"{class_names[predictions[i]]}\n(true: {class_names[labels[i]]})" for i in shown]
        )
        return report
