"""The generative tasks' data: the classifier's splits of the same Fashion-MNIST/MNIST files
(`apps.vision.classification.data`), as batches of uint8 images `[batch, 28, 28]` without labels, or
`(images, class_ids)` for class-conditional models; `Data.test` is `(images, labels)`.
"""

import numpy as np
import tensorflow as tf

from apps.vision.classification import data as vision_data
from apps.vision.generative.pixels import IMAGE_SHAPE
from shared import data as shared_data
from shared.app import Data


def build_data(config, source, labels=False, drop_remainder=False):
    """Training and validation batches of uint8 images (with int32 class ids when `labels`), the test arrays and
    the lineage: the classifier's splits of the same files (`apps.vision.classification.data.split_arrays`)."""
    splits, records = vision_data.split_arrays(config, source)
    train = images_dataset(splits["train"], config.batch_size, labels=labels, shuffle=True, seed=config.seed,
                           drop_remainder=drop_remainder)
    validation = (images_dataset(splits["validation"], config.batch_size * 2, labels=labels)
                  if len(splits["validation"][0]) else None)
    return Data(train=train, validation=validation, test=splits["test"], records=records,
                info={"class_names": vision_data.CLASS_NAMES[config.dataset], "image_shape": list(IMAGE_SHAPE),
                      "dataset": config.dataset})


def images_dataset(arrays, batch_size, labels=False, shuffle=False, seed=0, drop_remainder=False):
    """Batches of uint8 images, or `(images, int32 class ids)`, from `(images, labels)` arrays in memory."""
    images, class_ids = arrays
    tensors = (images, class_ids.astype(np.int32)) if labels else images
    return shared_data.pipeline(tf.data.Dataset.from_tensor_slices(tensors), batch_size, shuffle=shuffle, seed=seed,
                                cache=False, drop_remainder=drop_remainder)
