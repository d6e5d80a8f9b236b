"""Photographs with boxes and masks for the `detection` and `segmentation` tasks: find the folder, check and load
it (with the reader of its layout), split it.

Layouts (`data_format`, README.md describes them with examples): "penn_fudan" (`penn_fudan.py`), "voc"
(`voc.py`), "coco" (`coco.py`). Each reader returns a `records.Index`; `load` decodes it into `records.Photos`.

`check_source` parses every annotation and reads every image header (no pixel decoding) so a bad folder
fails with a `DataError` before a run opens, and `check_pixels` (the tasks' check_inputs) decodes every image and
mask once to catch truncated files there too; `load` decodes the pixels. `split_indices` is the seeded
70/10/20 train/validation/test split both tasks use, stratified by the name's site prefix (Penn-Fudan:
`FudanPed`, `PennPed`) so both sites are in every part. The tf.data pipelines of each task are in its module
(`tasks/detection.py`, `tasks/segmentation.py`): letterboxed boxes and resized masks differ.
"""

import re
from pathlib import Path

import numpy as np

from apps.vision.photos import coco, penn_fudan, records, voc
from apps.vision.photos.records import FORMATS, LAYOUTS
from shared.datasets import find_dataset
from shared.errors import DataError

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
SPLIT_SEED = 2024
DATASET_NAMES = {"penn_fudan": penn_fudan.PENN_FUDAN}  # the folder's name under $DLSUITE_DATA_DIR, by format
LOOKS_RIGHT = {
    "penn_fudan": lambda folder: (folder / penn_fudan.PENN_FUDAN_FOLDER).is_dir() or (folder / "PNGImages").is_dir(),
    "voc": lambda folder: (folder / "Annotations").is_dir(),
    "coco": lambda folder: any(folder.glob("*.json")) or any((folder / "annotations").glob("*.json")),
}


def resolve_source(data_format, data_dir=None):
    """The dataset folder (`shared.datasets.find_dataset`): `--data-dir` or its `<name>/` subfolder, else
    `$DLSUITE_DATA_DIR/<name>`, where <name> is `penn_fudan_ped` for Penn-Fudan and the format's name otherwise
    (`voc`, `coco`). The folder's contents are checked afterwards (`check_source`)."""
    if data_format not in FORMATS:
        raise DataError(f"Unknown photo data format. Received: data_format={data_format!r}. "
                        f"Expected one of: {', '.join(FORMATS)}. Fix: --set data_format=penn_fudan.")
    return find_dataset(DATASET_NAMES.get(data_format, data_format), data_dir, looks_right=LOOKS_RIGHT[data_format],
                        expected=f"photos in the {data_format} layout ({LAYOUTS[data_format]})")


def check_source(folder, data_format, class_names=None):
    """Parse and check every annotation and image header; return an `Index`. Raises DataError."""
    folder = Path(folder)
    if data_format == "penn_fudan":
        return penn_fudan.check_penn_fudan(folder)
    if data_format in ("voc", "coco"):
        return (voc.check_voc if data_format == "voc" else coco.check_coco)(folder, class_names)
    raise DataError(f"Unknown photo data format. Received: data_format={data_format!r}. "
                    f"Expected one of: {', '.join(FORMATS)}.")


def check_pixels(index):
    """Decode every image and mask of an `Index`, one at a time, and drop them: a truncated file fails with a
    DataError here, in the task's check_inputs, not after a run opened."""
    for record in index.records:
        _decode(record)


def _decode(record):
    """(image, mask or None) of one record."""
    if record.mask_path is not None:
        mask = penn_fudan.read_mask(record)
    else:
        mask = coco.rasterize(record) if record.segmentations is not None else None
    return records.read_image(record.image_path), mask


def load(index):
    """Decode the pixels (and masks) of an `Index` into `Photos`."""
    images, masks = zip(*map(_decode, index.records)) if index.records else ((), ())
    images, masks = list(images), list(masks)
    return records.Photos([record.name for record in index.records], images,
                          [record.boxes for record in index.records], [record.labels for record in index.records],
                          masks, list(index.class_names))


def split_indices(names, seed=SPLIT_SEED, fractions=SPLIT_FRACTIONS):
    """{"train", "validation", "test"} -> sorted index arrays: a seeded split, stratified by the names'
    leading letters (Penn-Fudan's two sites), each group cut 70/10/20 (rounded, train gets the rest)."""
    groups = {}
    for position, name in enumerate(names):
        groups.setdefault(re.match(r"[A-Za-z_]*", Path(name).stem).group(0), []).append(position)
    rng = np.random.default_rng(seed)
    parts = {"train": [], "validation": [], "test": []}
    for key in sorted(groups):
        members = np.asarray(groups[key])[rng.permutation(len(groups[key]))]
        num_test = int(round(fractions[2] * len(members)))
        num_validation = int(round(fractions[1] * len(members)))
        parts["test"].extend(members[:num_test])
        parts["validation"].extend(members[num_test:num_test + num_validation])
        parts["train"].extend(members[num_test + num_validation:])
    for split in ("test", "validation"):  # a small folder (tests, a user's few photos): one in each part at least
        if not parts[split] and len(parts["train"]) > 1:
            parts[split].append(parts["train"].pop())
    return {split: np.sort(np.asarray(members, dtype=np.int64)) for split, members in parts.items()}


def load_split(folder, data_format, seed=SPLIT_SEED, class_names=None):
    """Check, load and split in one call: {"train": Photos, "validation": Photos, "test": Photos}, the Index."""
    index = check_source(folder, data_format, class_names)
    photos = load(index)
    return {split: photos.subset(indices) for split, indices in split_indices(photos.names, seed).items()}, index
