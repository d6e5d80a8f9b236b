"""The Penn-Fudan pedestrian reader: the folder the official PennFudanPed.zip extracts to,
`PennFudanPed/{PNGImages,PedMasks,Annotation}` (given as the folder holding `PennFudanPed/` or as `PennFudanPed/`
itself). Annotations are PASCAL v1.00 text with 1-based inclusive corners; masks hold instance ids. A
`SHA256SUMS` beside `PennFudanPed/` is verified when present.

    check_penn_fudan(folder) -> records.Index (every annotation parsed, every image header read)
    read_mask(record) -> uint8 instance ids [H, W], checked against the boxes
"""

import re
from pathlib import Path

import numpy as np

from apps.vision.photos import records
from shared import checksums
from shared.errors import DataError

PENN_FUDAN = "penn_fudan_ped"  # the folder's name under $DLSUITE_DATA_DIR
PENN_FUDAN_FOLDER = "PennFudanPed"
PENN_FUDAN_CLASSES = ["pedestrian"]

_BOX = re.compile(r'Bounding box for object (\d+) "([^"]+)" \(Xmin, Ymin\) - \(Xmax, Ymax\) : '
                  r"\((\d+), (\d+)\) - \((\d+), (\d+)\)")
_SIZE = re.compile(r"Image size \(X x Y x C\) : (\d+) x (\d+) x (\d+)")
_COUNT = re.compile(r"Objects with ground truth : (\d+)")


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


def check_penn_fudan(folder):
    root = penn_fudan_root(folder)
    sums = root.parent / "SHA256SUMS"
    if sums.is_file():
        checksums.verify(sums)
    image_paths = sorted(path for path in (root / "PNGImages").iterdir() if path.suffix.lower() == ".png")
    if not image_paths:
        raise DataError(f"No images in the Penn-Fudan folder. Received: {root / 'PNGImages'} holds no .png file. "
                        f"Expected the 170 photographs <name>.png. Fix: extract PennFudanPed.zip again.")
    found = []
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
        actual = records.image_size(image_path)
        if actual != (height, width):
            raise DataError(f"Image size disagrees with its annotation. Received: {image_path.name} is "
                            f"{actual[1]} x {actual[0]} px, {annotation.name} says {width} x {height}. Expected the "
                            "same size. Fix: restore the original files.")
        if records.image_size(mask_path) != actual:
            raise DataError(f"Mask size disagrees with its image. Received: {mask_path.name} is "
                            f"{records.image_size(mask_path)[::-1]} (W, H), {image_path.name} is {actual[::-1]}. "
                            "Expected the same size. Fix: restore the original mask.")
        found.append(records.Record(stem, image_path, actual, boxes, np.zeros(len(boxes), np.int32),
                                    mask_path=mask_path))
    return records.Index(root, "penn_fudan", found, list(PENN_FUDAN_CLASSES))


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


def read_mask(record):
    mask = records.decode(record.mask_path, mode="L")
    ids = set(np.unique(mask).tolist()) - {0}
    if ids != set(range(1, len(record.boxes) + 1)):
        raise DataError(f"Mask ids disagree with the boxes. Received: {record.mask_path.name} holds ids "
                        f"{sorted(ids)[:10]} for {len(record.boxes)} boxes. Expected 0 (background) and 1..N, "
                        "id k for object k. Fix: restore the original mask.")
    return mask
