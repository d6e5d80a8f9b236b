"""What `detection` and `segmentation` share on the contract: the base task (find, check, split, cap and
fingerprint the photos `../data.py` reads) and the training augmentation (boxes or masks move with
the pixels)."""

import keras
import numpy as np

from apps.vision.photos import backbones
from apps.vision.photos import data as photos
from apps.vision.photos.penn_fudan import PENN_FUDAN
from shared import classifier
from shared import data as shared_data
from shared.app import DatasetRecord, DataSource, Task
from shared.errors import DataError


class PhotoTask(Task):
    """The base of `detection` and `segmentation`: the photos found, checked (at least three, so that every part of
    the split gets one), split by `split_seed`, capped by `max_*_examples` and fingerprinted.

    Subclasses add what their photos must carry (`check_photos`) and name the arrays a part's fingerprint covers
    (`fingerprint_arrays`).
    """

    app = "vision"

    def check_inputs(self, config, data_dir):
        folder = photos.resolve_source(config.data_format, data_dir)
        index = photos.check_source(folder, config.data_format, config.class_names or None)
        if len(index.records) < 3:
            raise DataError(
                f"Too few photos. Received: {len(index.records)} in {folder}. Expected at least 3, so that the "
                "70/10/20 train/validation/test split leaves one in each part (a useful model needs hundreds). "
                "Fix: add photos.")
        self.check_photos(index, folder, config)
        photos.check_pixels(index)  # every file decodes (a truncated PNG), before a run opens
        backbones.check_available(config.backbone, config.pretrained)
        return DataSource.files(folder)

    def check_photos(self, index, folder, config):
        """Raise `DataError` when the photos lack what the task needs."""

    def fingerprint_arrays(self, part):
        """Per photo, the arrays its lineage fingerprint covers."""
        raise NotImplementedError

    def split(self, config, source):
        """`(every photo, {"train", "validation", "test"} -> Photos, [DatasetRecord])`."""
        every = photos.load(photos.check_source(source.path, config.data_format, config.class_names or None))
        parts = {split: every.subset(indices)
                 for split, indices in photos.split_indices(every.names, config.split_seed).items()}
        limits = dict(zip(("train", "validation", "test"), classifier.limits(config)))
        parts = {split: part.subset(range(min(len(part), limits[split] or len(part)))) for split, part in parts.items()}
        dataset_name = {"penn_fudan": PENN_FUDAN}.get(config.data_format, config.data_format)
        records = [DatasetRecord(dataset_name, source.uri, split, len(part), self.fingerprint(part))
                   for split, part in parts.items()]
        return every, parts, records

    def fingerprint(self, part):
        """SHA-256 over each photo's name and arrays, in order (`shared.data.fingerprint_arrays`)."""
        return shared_data.fingerprint_arrays(*(
            item for name, arrays in zip(part.names, self.fingerprint_arrays(part))
            for item in (np.frombuffer(name.encode(), np.uint8), *arrays)))


def augmentation(config, bounding_box_format=None):
    """Training-only: flips, scale jitter and shifts (Keras 3 image layers, which move `bounding_boxes` given their
    format, and `segmentation_masks`, with the pixels); brightness and contrast change the pixels only. Returns
    `f({"images", ...}) -> same`, or None when every augmentation is off."""
    layers = []
    if config.random_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=config.seed))
    if config.random_zoom:
        layers.append(keras.layers.RandomZoom((-config.random_zoom, config.random_zoom), fill_mode="constant",
                                              seed=config.seed + 1))
    if config.random_translation:
        layers.append(keras.layers.RandomTranslation(config.random_translation, config.random_translation,
                                                     fill_mode="constant", seed=config.seed + 2))
    if config.color_jitter:
        layers.append(keras.layers.RandomBrightness(config.color_jitter, value_range=(0, 255), seed=config.seed + 3))
        layers.append(keras.layers.RandomContrast(config.color_jitter, value_range=(0, 255), seed=config.seed + 4))
    if not layers:
        return None
    for layer in layers:
        if bounding_box_format:
            layer.bounding_box_format = bounding_box_format

    def apply(inputs):
        for layer in layers:
            inputs = layer(inputs, training=True)
        return inputs

    return apply
