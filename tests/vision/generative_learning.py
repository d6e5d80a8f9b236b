"""Did an exported autoencoder or VAE learn? Scored by the tests, independently of the code under test.

The test images are read with the tests' own IDX reader (`tests.tiny_data.read_idx`), the SavedModel is called
through `tf.saved_model.load` on raw uint8 images, and the reconstruction error is computed here from the served
uint8 reconstructions. Chance is the error of the best constant answer: the mean training image.
"""

import numpy as np

from tests.learning import _call, _find, _signature
from tests.tiny_data import IDX_FILES, read_idx


def reconstruction_error(export_dir, idx_dir, count=2000):
    """`(-MSE, -MSE of the mean training image)` on the first `count` test images, pixels in [0, 1]."""
    test = read_idx(_find(idx_dir, IDX_FILES["test"][0]))[:count]
    train = read_idx(_find(idx_dir, IDX_FILES["train"][0]))
    signature = _signature(export_dir)
    reconstructions = np.concatenate([_call(signature, images=test[start:start + 500])["reconstructions"]
                                      for start in range(0, len(test), 500)])
    assert reconstructions.dtype == np.uint8 and reconstructions.shape == test.shape, reconstructions.shape
    mse = float(np.mean(np.square(reconstructions / 255.0 - test / 255.0)))
    mean_image_mse = float(np.mean(np.square(train.mean(axis=0) / 255.0 - test / 255.0)))
    return -mse, -mean_image_mse
