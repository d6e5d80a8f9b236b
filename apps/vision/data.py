"""Fashion-MNIST / MNIST: find the official IDX files (or download with TFDS) and build tf.data pipelines.

The pipelines yield batches of raw uint8 images and one-hot labels: casting, rescaling and
augmentation are layers of the model (`apps/vision/models.py`), so training sees what serving sees.

Sources, in order: `--data-dir` (the files in it or in `<dir>/<dataset>`),
`$DLSUITE_DATA_DIR/<dataset>`, Debian's `/usr/share/datasets/<name>`
(`apt-get install -y dataset-fashion-mnist`), else TFDS (downloads once).
An explicit `--data-dir` never falls back to a download.
"""

import os
from pathlib import Path

import numpy as np

from apps.vision import idx
from shared.errors import DataError

CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "mnist": [str(digit) for digit in range(10)],
}
SYSTEM_DIRS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist", "mnist": "/usr/share/datasets/mnist"}
TFDS = "tfds"


def resolve_source(dataset, data_dir=None):
    """The folder holding the four IDX files, or "tfds" when none is found and none was named."""
    if data_dir:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(
                f"Data directory not found. Received: --data-dir {data_dir}. Expected a folder holding the four "
                f"{dataset} IDX files (train-images-idx3-ubyte[.gz], ...), directly or in {root}/{dataset}. "
                "Fix the path, or omit --data-dir to use the system copy (apt-get install -y dataset-fashion-mnist)."
            )
        for candidate in (root, root / dataset, root / dataset.replace("_", "-")):
            if idx.has_idx_files(candidate):
                return candidate
        raise DataError(
            f"No {dataset} IDX files in the data directory. Received: --data-dir {data_dir}. Expected "
            f"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
            f"(optionally .gz) in {root} or {root / dataset}."
        )
    candidates = []
    if os.environ.get("DLSUITE_DATA_DIR"):
        candidates.append(Path(os.environ["DLSUITE_DATA_DIR"]) / dataset)
    candidates.append(Path(SYSTEM_DIRS[dataset]))
    for candidate in candidates:
        if idx.has_idx_files(candidate):
            return candidate
    return TFDS


def check_source(source):
    """Read and validate every IDX file now, so bad files fail before a run starts (results are cached)."""
    if source != TFDS:
        for split in ("train", "test"):
            idx.load_split(source, split)


def load_arrays(dataset, source):
    """{"train": (images, labels), "test": (images, labels)} as uint8 numpy arrays."""
    if source == TFDS:
        return _load_tfds(dataset)
    return {split: idx.load_split(source, split) for split in ("train", "test")}


def _load_tfds(dataset):
    import tensorflow_datasets as tfds

    arrays = {}
    for split in ("train", "test"):
        # Batched iteration rather than batch_size=-1, which aborts under tfds.testing.mock_data.
        batches = list(tfds.as_numpy(tfds.load(dataset, split=split, as_supervised=True).batch(10_000)))
        images = np.concatenate([images for images, _labels in batches])
        labels = np.concatenate([labels for _images, labels in batches])
        arrays[split] = (images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.uint8))
    return arrays


def data_source(config, data_dir):
    """`check_inputs` of every Fashion-MNIST/MNIST task: find the files (reading and validating them now) and
    return the `DataSource` (files, or TFDS when nothing local is found and no folder was named)."""
    from shared.app import DataSource

    source = resolve_source(config.dataset, data_dir)
    check_source(source)
    return DataSource("tfds", config.dataset) if source == TFDS else DataSource.files(source)


def split_arrays(config, source):
    """The splits every Fashion-MNIST/MNIST task trains on, and their lineage.

    `validation_fraction` of the training images (seeded by `seed`) validate; `max_train_examples` caps
    training, an eighth of it validation, `max_test_examples` the test set (`shared.classifier.limits`).
    Returns `({"train": (images, labels), "validation": ..., "test": ...}, [DatasetRecord])`; the
    fingerprints cover the whole files' pixels and labels, so every task reading them logs the same ones.
    """
    from shared import classifier
    from shared import data as shared_data
    from shared.app import DatasetRecord

    arrays = load_arrays(config.dataset, source.path or TFDS)
    images, labels = arrays["train"]
    train_limit, validation_limit, test_limit = classifier.limits(config)
    train_index, validation_index = shared_data.split_indices(len(images), config.validation_fraction, config.seed)
    train_index, validation_index = train_index[:train_limit], validation_index[:validation_limit]
    test_images, test_labels = (array[:test_limit] for array in arrays["test"])
    splits = {"train": (images[train_index], labels[train_index]),
              "validation": (images[validation_index], labels[validation_index]),
              "test": (test_images, test_labels)}
    fingerprints = {"train": shared_data.fingerprint_arrays(images, labels),
                    "test": shared_data.fingerprint_arrays(test_images, test_labels)}
    records = [DatasetRecord(config.dataset, source.uri, split, len(splits[split][0]),
                             fingerprints["test" if split == "test" else "train"])
               for split in ("train", "validation", "test")]
    return splits, records


def source_uri(dataset, source):
    return f"tfds://{dataset}" if source == TFDS else str(Path(source).resolve())


def datasets(config, train, validation):
    """Batched `(uint8 images, one-hot labels)` datasets from `(images, labels)` arrays already in memory:
    shuffled training batches and validation batches twice as large. No cache, no per-example map."""
    import tensorflow as tf

    from shared import data as shared_data

    to_one_hot = shared_data.one_hot(len(CLASS_NAMES[config.dataset]))
    train = shared_data.pipeline(tf.data.Dataset.from_tensor_slices(train), config.batch_size, shuffle=True,
                                 seed=config.seed, cache=False, batch_map_fn=to_one_hot)
    validation = shared_data.pipeline(tf.data.Dataset.from_tensor_slices(validation), config.batch_size * 2,
                                      cache=False, batch_map_fn=to_one_hot)
    return train, validation
