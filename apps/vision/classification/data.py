"""Fashion-MNIST / MNIST: find the official IDX files (or download with TFDS) and build tf.data pipelines.

The pipelines yield batches of raw uint8 images and one-hot labels: casting, rescaling and
augmentation are layers of the model (`models.py`), so training sees what serving sees.

Sources, in order (`shared.datasets.find_dataset`): `--data-dir` (the files in it or in `<dir>/<dataset>`),
`$DLSUITE_DATA_DIR/<dataset>`, Debian's `/usr/share/datasets/<name>`
(`apt-get install -y dataset-fashion-mnist`), else TFDS (downloads once).
An explicit `--data-dir` never falls back to a download.
"""

import numpy as np

from apps.vision.classification import idx
from shared.datasets import find_dataset

CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "mnist": [str(digit) for digit in range(10)],
}
SYSTEM_DIRS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist", "mnist": "/usr/share/datasets/mnist"}
TFDS = "tfds"


def resolve_source(dataset, data_dir=None):
    """The folder holding the four IDX files (`shared.datasets.find_dataset`: `--data-dir` or its
    `<dataset>` / `<data-set>` subfolder, `$DLSUITE_DATA_DIR/<dataset>`, the Debian folder), or "tfds" when none
    is found and no `--data-dir` was named."""
    return find_dataset(
        dataset, data_dir, looks_right=idx.has_idx_files, subfolders=(dataset.replace("_", "-"),),
        system_dirs=(SYSTEM_DIRS[dataset],), fallback=TFDS,
        expected=f"the four {dataset} IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                 "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz)")


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
