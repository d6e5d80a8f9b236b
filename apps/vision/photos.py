"""Photographs with boxes and masks: Penn-Fudan, PASCAL VOC XML folders and COCO-style JSON.

Shared by the `detection` and `segmentation` tasks. Each reader returns the same `Photos`:

    images  uint8 [H, W, 3] RGB, one array per photo (sizes vary)
    boxes   float32 [n, 4] (xmin, ymin, xmax, ymax) in pixel coordinates: 0-based pixel edges, so a box
            that covers pixel columns 0..9 is (0, 10); the same convention as COCO's [x, y, w, h]
    labels  int32 [n], indices into `class_names`
    masks   uint8 [H, W] instance ids (0 background, k = object k, i.e. boxes[k - 1]) or None when the
            format carries no masks

Layouts (`data_format`, apps/vision/README.md describes them with examples):

- "penn_fudan": the folder the official PennFudanPed.zip extracts to, `PennFudanPed/{PNGImages,PedMasks,
  Annotation}` (given as the folder holding `PennFudanPed/` or as `PennFudanPed/` itself). Annotations are
  PASCAL v1.00 text with 1-based inclusive corners; masks hold instance ids. A `SHA256SUMS` beside
  `PennFudanPed/` is verified when present.
- "voc": `Annotations/*.xml` (PASCAL VOC: <filename>, <size>, <object><name>, <bndbox> 1-based inclusive)
  and `JPEGImages/` holding the images they name.
- "coco": one JSON (`annotations.json`, or the only `*.json` in the folder or in `annotations/`) with
  `images`, `annotations` ([x, y, w, h] boxes, optional polygon/RLE segmentation) and `categories`; the
  images in `images/` (or at `file_name` relative to the folder). Crowd annotations are left out.

`check_source` parses every annotation and reads every image header (no pixel decoding) so a bad folder
fails with a `DataError` before a run opens; `load` decodes the pixels. `split_indices` is the seeded
70/10/20 train/validation/test split both tasks use, stratified by the name's site prefix (Penn-Fudan:
`FudanPed`, `PennPed`) so both sites are in every part.

The VOC and COCO readers are in `apps/vision/photo_formats.py`; what both tasks share on the contract (the
base task, the augmentation) is in `apps/vision/photo_task.py`.
"""

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from shared import checksums
from shared.errors import DataError

FORMATS = ("penn_fudan", "voc", "coco")
PENN_FUDAN = "penn_fudan_ped"  # the folder's name under $DLSUITE_DATA_DIR
PENN_FUDAN_FOLDER = "PennFudanPed"
PENN_FUDAN_CLASSES = ["pedestrian"]
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
SPLIT_SEED = 2024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

_BOX = re.compile(r'Bounding box for object (\d+) "([^"]+)" \(Xmin, Ymin\) - \(Xmax, Ymax\) : '
                  r"\((\d+), (\d+)\) - \((\d+), (\d+)\)")
_SIZE = re.compile(r"Image size \(X x Y x C\) : (\d+) x (\d+) x (\d+)")
_COUNT = re.compile(r"Objects with ground truth : (\d+)")


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


# === Finding the folder ===


def resolve_source(data_format, data_dir=None):
    """The dataset folder: `--data-dir`, else (Penn-Fudan only) `$DLSUITE_DATA_DIR/penn_fudan_ped`."""
    if data_format not in FORMATS:
        raise DataError(f"Unknown photo data format. Received: data_format={data_format!r}. "
                        f"Expected one of: {', '.join(FORMATS)}. Fix: --set data_format=penn_fudan.")
    if data_dir:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise DataError(
                f"Data directory not found. Received: --data-dir {data_dir}. Expected a folder in the "
                f"{data_format} layout ({LAYOUTS[data_format]}). Fix the path"
                + (", or omit --data-dir to use $DLSUITE_DATA_DIR/penn_fudan_ped." if data_format == "penn_fudan"
                   else ".")
            )
        return folder
    if data_format == "penn_fudan" and os.environ.get("DLSUITE_DATA_DIR"):
        folder = Path(os.environ["DLSUITE_DATA_DIR"]) / PENN_FUDAN
        if folder.is_dir():
            return folder
    raise DataError(
        f"No data directory for the photos. Received: data_format={data_format!r}, no --data-dir, "
        f"DLSUITE_DATA_DIR={os.environ.get('DLSUITE_DATA_DIR')!r}. Expected a folder in the {data_format} layout "
        f"({LAYOUTS[data_format]}). Fix: pass --data-dir <folder>"
        + (" or export DLSUITE_DATA_DIR=<folder holding penn_fudan_ped/>." if data_format == "penn_fudan" else ".")
    )


LAYOUTS = {
    "penn_fudan": "PennFudanPed/PNGImages/*.png, PennFudanPed/PedMasks/*_mask.png, PennFudanPed/Annotation/*.txt",
    "voc": "Annotations/*.xml and JPEGImages/ with the images they name",
    "coco": "annotations.json (or one *.json in the folder or in annotations/) and images/",
}


def check_source(folder, data_format, class_names=None):
    """Parse and check every annotation and image header; return an `Index`. Raises DataError."""
    folder = Path(folder)
    if data_format == "penn_fudan":
        return _check_penn_fudan(folder)
    if data_format in ("voc", "coco"):
        from apps.vision import photo_formats  # it builds this module's Records: imported when used

        return (photo_formats.check_voc if data_format == "voc" else photo_formats.check_coco)(folder, class_names)
    raise DataError(f"Unknown photo data format. Received: data_format={data_format!r}. "
                    f"Expected one of: {', '.join(FORMATS)}.")


def load(index):
    """Decode the pixels (and masks) of an `Index` into `Photos`."""
    images, masks = [], []
    for record in index.records:
        image = _read_image(record.image_path)
        images.append(image)
        if record.mask_path is not None:
            masks.append(_read_mask(record))
        elif record.segmentations is not None:
            from apps.vision import photo_formats

            masks.append(photo_formats.rasterize(record))
        else:
            masks.append(None)
    return Photos([record.name for record in index.records], images, [record.boxes for record in index.records],
                  [record.labels for record in index.records], masks, list(index.class_names))


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


# === Penn-Fudan ===


def penn_fudan_root(folder):
    """`PennFudanPed/` inside `folder`, or `folder` itself when it is that folder."""
    folder = Path(folder)
    for candidate in (folder / PENN_FUDAN_FOLDER, folder):
        if (candidate / "PNGImages").is_dir() and (candidate / "Annotation").is_dir():
            return candidate
    raise DataError(
        f"No Penn-Fudan folder in the data directory. Received: {folder} (holding: "
        f"{', '.join(sorted(path.name for path in folder.iterdir())[:8]) or 'nothing'}). Expected "
        f"{PENN_FUDAN_FOLDER}/PNGImages, {PENN_FUDAN_FOLDER}/PedMasks and {PENN_FUDAN_FOLDER}/Annotation (the layout "
        f"PennFudanPed.zip extracts to). Fix: --data-dir <the folder holding {PENN_FUDAN_FOLDER}/>."
    )


def _check_penn_fudan(folder):
    root = penn_fudan_root(folder)
    sums = root.parent / "SHA256SUMS"
    if sums.is_file():
        checksums.verify(sums)
    image_paths = sorted(path for path in (root / "PNGImages").iterdir() if path.suffix.lower() == ".png")
    if not image_paths:
        raise DataError(f"No images in the Penn-Fudan folder. Received: {root / 'PNGImages'} holds no .png file. "
                        f"Expected the 170 photographs <name>.png. Fix: extract PennFudanPed.zip again.")
    records = []
    for image_path in image_paths:
        stem = image_path.stem
        annotation = root / "Annotation" / f"{stem}.txt"
        mask_path = root / "PedMasks" / f"{stem}_mask.png"
        for needed in (annotation, mask_path):
            if not needed.is_file():
                raise DataError(f"Penn-Fudan file missing. Received: {needed} does not exist for {image_path.name}. "
                                f"Expected <name>.png, PedMasks/<name>_mask.png and Annotation/<name>.txt for every "
                                "photo. Fix: restore the file or remove the photo.")
        width, height, boxes = parse_pascal_v1(annotation)
        actual = image_size(image_path)
        if actual != (height, width):
            raise DataError(f"Image size disagrees with its annotation. Received: {image_path.name} is "
                            f"{actual[1]} x {actual[0]} px, {annotation.name} says {width} x {height}. Expected the "
                            "same size. Fix: restore the original files.")
        if image_size(mask_path) != actual:
            raise DataError(f"Mask size disagrees with its image. Received: {mask_path.name} is "
                            f"{image_size(mask_path)[::-1]} (W, H), {image_path.name} is {actual[::-1]}. "
                            "Expected the same size. Fix: restore the original mask.")
        records.append(Record(stem, image_path, actual, boxes, np.zeros(len(boxes), np.int32), mask_path=mask_path))
    return Index(root, "penn_fudan", records, list(PENN_FUDAN_CLASSES))


def parse_pascal_v1(path):
    """(width, height, boxes) of a PASCAL Annotation Version 1.00 text file; 1-based inclusive corners become
    0-based pixel edges (xmin - 1, ymin - 1, xmax, ymax)."""
    text = Path(path).read_text(encoding="ascii", errors="replace")
    size, count = _SIZE.search(text), _COUNT.search(text)
    if size is None or count is None:
        missing = "Image size (X x Y x C) : W x H x C" if size is None else "Objects with ground truth : N"
        raise DataError(f"Not a PASCAL v1.00 annotation. Received: {path} has no {missing!r} line. Expected the "
                        "Penn-Fudan Annotation/<name>.txt format. Fix: restore the original file.")
    width, height = int(size.group(1)), int(size.group(2))
    matches = _BOX.findall(text)
    if len(matches) != int(count.group(1)) or [int(m[0]) for m in matches] != list(range(1, len(matches) + 1)):
        raise DataError(f"Boxes disagree with the object count. Received: {path} says {count.group(1)} objects and "
                        f"holds {len(matches)} numbered boxes. Expected boxes for objects 1..N. Fix: restore the file.")
    boxes = np.asarray([[int(v) for v in m[2:]] for m in matches], np.float32).reshape(-1, 4)
    bad = (boxes[:, 0] < 1) | (boxes[:, 1] < 1) | (boxes[:, 2] > width) | (boxes[:, 3] > height) | (
        boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise DataError(f"Box outside its image. Received: {path} box {int(np.argmax(bad)) + 1} = "
                        f"{boxes[np.argmax(bad)].astype(int).tolist()} in a {width} x {height} image. Expected "
                        "1 <= Xmin <= Xmax <= width and 1 <= Ymin <= Ymax <= height (1-based, inclusive). "
                        "Fix: correct the box.")
    boxes[:, :2] -= 1
    return width, height, boxes


def _read_mask(record):
    mask = _decode(record.mask_path, mode="L")
    ids = set(np.unique(mask).tolist()) - {0}
    if ids != set(range(1, len(record.boxes) + 1)):
        raise DataError(f"Mask ids disagree with the boxes. Received: {record.mask_path.name} holds ids "
                        f"{sorted(ids)[:10]} for {len(record.boxes)} boxes. Expected 0 (background) and 1..N, "
                        "id k for object k. Fix: restore the original mask.")
    return mask


# === Images ===


def check_boxes(boxes, size, where, expected):
    height, width = size
    bad = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height) | (
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
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"Unreadable image file {path}. Received: {error}. Expected a PNG or JPEG image. "
                        "Fix: restore or remove the file.") from None


def _decode(path, mode):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode), dtype=np.uint8)
    except OSError as error:
        raise DataError(f"Unreadable image file {path}. Received: {error}. Expected a PNG or JPEG image. "
                        "Fix: restore or remove the file.") from None


def _read_image(path):
    return _decode(path, "RGB")
