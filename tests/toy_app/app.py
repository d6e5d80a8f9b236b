"""The toy task: a logistic model on 2-D points, served with a threshold computed after training."""

import csv
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from shared import data as shared_data
from shared import export
from shared.app import Data, DatasetRecord, DataSource, Endpoint, Report, Task
from shared.errors import DataError
from shared.optimizers import build_optimizer

FILE = "points.csv"


def make_points(num_examples, positive_fraction, seed):
    """Points whose label is `x0 + x1 > cut`, the cut placing `positive_fraction` of them positive."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(num_examples, 2)).astype(np.float32)
    cut = np.quantile(points.sum(axis=1), 1 - positive_fraction)
    return points, (points.sum(axis=1) > cut).astype(np.int32)


def write_points(folder, points, labels):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / FILE, "w", newline="") as handle:
        csv.writer(handle).writerows([[f"{x0:.6f}", f"{x1:.6f}", int(label)]
                                      for (x0, x1), label in zip(points, labels)])
    return folder


def read_points(folder):
    rows = list(csv.reader(open(Path(folder) / FILE)))
    return np.array([row[:2] for row in rows], np.float32), np.array([row[2] for row in rows], np.int32)


class PointsTask(Task):
    app = "toy"
    name = "points"

    def check_inputs(self, config, data_dir):
        if data_dir is None:
            return DataSource("memory", "points")
        if not (Path(data_dir) / FILE).is_file():
            raise DataError(f"No {FILE}. Received: --data-dir {data_dir}. Expected a folder holding {FILE}.")
        return DataSource.files(data_dir)

    def build_data(self, config, source):
        if source.kind == "memory":
            points, labels = make_points(config.num_examples, config.positive_fraction, config.seed)
        else:
            points, labels = read_points(source.path)
        train_index, test_index = shared_data.split_indices(len(points), 0.25, config.seed)
        train_index, validation_index = train_index[len(train_index) // 4:], train_index[: len(train_index) // 4]

        def examples(index):
            return tf.data.Dataset.from_tensor_slices((points[index], labels[index]))

        # A filter makes the size unknown to tf.data (cardinality -2), as a user's data cleaning would.
        train = examples(train_index).filter(lambda point, label: tf.reduce_all(tf.math.is_finite(point)))
        records = [DatasetRecord("points", source.uri, split, len(index), shared_data.fingerprint_arrays(points[index]))
                   for split, index in (("train", train_index), ("validation", validation_index),
                                        ("test", test_index))]
        return Data(train=shared_data.sized(train.batch(config.batch_size)), validation=examples(validation_index).batch(256),
                    test=(points[test_index], labels[test_index]), records=records,
                    info={"positive_rate": float(labels[train_index].mean()),
                          "validation_points": points[validation_index]})

    def build_model(self, config, data):
        inputs = keras.Input(shape=(2,), name="points")
        outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(inputs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=build_optimizer(config, shared_data.steps_per_epoch(data.train)),
                      loss="binary_crossentropy", metrics=["accuracy"])
        return model

    def class_weight(self, config, data):
        if not config.class_weighting:
            return None
        rate = data.info["positive_rate"]
        return {0: 0.5 / (1 - rate), 1: 0.5 / rate}

    def after_fit(self, model, data, config):
        scores = model.predict(data.info["validation_points"], verbose=0)[:, 0]
        return {"threshold": float(np.quantile(scores, 1 - config.alert_fraction)),
                "score_histogram": np.histogram(scores, bins=4, range=(0, 1))[0].astype(np.int64)}

    def endpoints(self, model, config, info):
        threshold = tf.constant(info["threshold"], tf.float32)
        histogram = tf.constant(info["score_histogram"])

        def serve(points):
            scores = model(points, training=False)[:, 0]
            return {"scores": scores, "flagged": scores >= threshold, "score_histogram": histogram}

        def generate(seed, count):
            points = tf.random.stateless_normal([count, 2], seed=export.stateless_seed(seed))
            return {"points": points, "scores": model(points, training=False)[:, 0]}

        return {"serving_default": Endpoint(serve, [tf.TensorSpec([None, 2], tf.float32, name="points")]),
                "generate": Endpoint(generate, [export.seed_spec(), tf.TensorSpec([], tf.int32, name="count")])}

    def signature_examples(self, data):
        return {"serving_default": {"points": data.test[0][:8]},
                "generate": {"seed": np.int32(7), "count": np.int32(5)}}

    def evaluate(self, serving, data, config):
        points, labels = data.test
        outputs = serving.batched(64, points=points)
        generated = serving["generate"](seed=np.int32(0), count=np.int32(100))
        return Report(metrics={"test_accuracy": float(((outputs["scores"] > 0.5) == labels).mean()),
                               "test_flagged_rate": float(outputs["flagged"].mean()),
                               "generated_positive_rate": float((generated["scores"] > 0.5).mean())})
