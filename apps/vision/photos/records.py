"""The records the photo readers return (`penn_fudan.py`, `voc.py`, `coco.py`) and `data.py` loads, and the checks
of image files they share. The readers and `data.py` import this module; it imports none of them.

    Record  one photo's annotation, parsed and checked, before its pixels are decoded
    Index   what a reader found: the records, the class names, the format and the folder
    Photos  the decoded photos of an Index (or of a part of it):
            images  uint8 [H, W, 3] RGB, one array per photo (sizes vary)
            boxes   float32 [n, 4] (xmin, ymin, xmax, ymax) in pixel coordinates: 0-based pixel edges, so a box
                    that covers pixel columns 0..9 is (0, 10); the same convention as COCO's [x, y, w, h]
            labels  int32 [n], indices into `class_names`
            masks   uint8 [H, W] instance ids (0 background, k = object k, i.e. boxes[k - 1]) or None when the
                    format carries no masks
"""

import dataclasses
from pathlib import Path

import numpy as np

from shared.errors import DataError

FORMATS = ("penn_fudan", "voc", "coco")
MASK_FORMATS = ("penn_fudan", "coco")  # the layouts with masks (VOC folders carry boxes only)
LAYOUTS = {
    "penn_fudan": "PennFudanPed/PNGImages/*.png, PennFudanPed/PedMasks/*_mask.png, PennFudanPed/Annotation/*.txt",
    "voc": "Annotations/*.xml and JPEGImages/ with the images they name",
    "coco": "annotations.json (or one *.json in the folder or in annotations/) and images/",
}


@dataclasses.dataclass
class Record:
    """One photo's annotation, parsed and checked, before its pixels are decoded."""

    name: str
    image_path: Path
    size: tuple  # (height, width)
    boxes: np.ndarray  # float32 [n, 4] xyxy pixel edges
    labels: np.ndarray  # int32 [n]
    mask_path: Path = None  # Penn-Fudan: the instance-id PNG
    segmentations: list = None  # COCO: one polygon list / RLE per object (None when absent)


@dataclasses.dataclass
class Photos:
    names: list
    images: list
    boxes: list
    labels: list
    masks: list
    class_names: list

    def __len__(self):
        return len(self.names)

    def subset(self, indices):
        pick = lambda values: [values[i] for i in indices]  # noqa: E731
        return Photos(pick(self.names), pick(self.images), pick(self.boxes), pick(self.labels), pick(self.masks),
                      list(self.class_names))

    @property
    def num_objects(self):
        return int(sum(len(labels) for labels in self.labels))


@dataclasses.dataclass
class Index:
    """What `check_source` found: the records, the class names, the format and the folder."""

    folder: Path
    data_format: str
    records: list
    class_names: list


# === Images ===


def inside(root, path, where):
    """`path`, refused (DataError) unless it stays inside the data folder `root`: an annotation must not name
    files elsewhere (`../../etc/passwd`). `where` says which annotation names it."""
    if not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise DataError(f"File outside the data folder. Received: {where}, which is {path}. Expected a path inside "
                        f"{root}. Fix: move the file into the data folder and name it relative to it.")
    return Path(path)


def check_boxes(boxes, size, where, expected):
    height, width = size
    bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height) | (
        boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if bad.any():
        raise DataError(f"Box outside its image. Received: {where} box {int(np.argmax(bad)) + 1} (as 0-based edges "
                        f"xmin, ymin, xmax, ymax) = {boxes[np.argmax(bad)].tolist()} in a {width} x {height} image. "
                        f"Expected {expected}. Fix: correct the box.")


def image_size(path):
    """(height, width) from the file header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise DataError(f"Unreadable image file {path}. Received: {error}. Expected a PNG or JPEG image. "
                        "Fix: restore or remove the file.") from None


def decode(path, mode):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode), dtype=np.uint8)
    except (OSError, Image.DecompressionBombError) as error:
        raise DataError(f"Unreadable image file {path}. Received: {error}. Expected a PNG or JPEG image. "
                        "Fix: restore or remove the file.") from None


def read_image(path):
    return decode(path, "RGB")
