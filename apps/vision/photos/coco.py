"""The COCO-style reader: one JSON (`annotations.json`, or the only `*.json` in the folder or in `annotations/`)
with `images`, `annotations` ([x, y, w, h] boxes, optional polygon/RLE segmentation) and `categories`; the images
in `images/` (or at `file_name` relative to the folder). Crowd annotations are left out.

    check_coco(folder, class_names) -> records.Index: every annotation parsed and every image header read,
        DataError on the first problem
    rasterize(record) -> uint8 instance ids from a COCO record's polygons / RLE (pycocotools)
"""

import json
from pathlib import Path

import numpy as np

from apps.vision.photos import records
from shared.errors import DataError


def coco_json(folder):
    """The COCO-style annotation file of `folder`."""
    if (folder / "annotations.json").is_file():
        return folder / "annotations.json"
    candidates = sorted(folder.glob("*.json")) or sorted((folder / "annotations").glob("*.json"))
    if len(candidates) != 1:
        raise DataError(f"{'No' if not candidates else 'More than one'} COCO annotation file in the data directory. "
                        f"Received: {folder} with {[path.name for path in candidates]}. Expected annotations.json, or "
                        "exactly one *.json in the folder or in annotations/. Fix: name the file annotations.json.")
    return candidates[0]


def check_coco(folder, class_names=None):
    path = coco_json(folder)
    try:
        document = json.loads(path.read_text())
        images, annotations, categories = document["images"], document["annotations"], document["categories"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"Not a COCO annotation file. Received: {path} ({type(error).__name__}: {error}). Expected a "
                        "JSON object with 'images', 'annotations' and 'categories' lists. Fix: export COCO JSON.") from None
    check_structure(path, images, annotations, categories)
    categories = sorted(categories, key=lambda category: category["id"])
    names = [category["name"] for category in categories]
    if class_names:
        missing = [name for name in class_names if name not in names]
        if missing:
            raise DataError(f"Class not in the COCO categories. Received: class_names has {missing[0]!r}. Expected "
                            f"names from {path.name}: {', '.join(names)}. Fix: --set class_names=... with those.")
        names = list(class_names)
    label_of = {category["id"]: names.index(category["name"]) for category in categories
                if category["name"] in names}
    known_ids = {category["id"] for category in categories}
    by_image = {}
    for number, annotation in enumerate(annotations):
        if annotation.get("image_id") is None or annotation.get("category_id") not in known_ids:
            raise DataError(f"Bad COCO annotation. Received: annotations[{number}] has image_id="
                            f"{annotation.get('image_id')!r}, category_id={annotation.get('category_id')!r}. "
                            f"Expected an image id and a category id from categories ({sorted(known_ids)}). "
                            "Fix: correct the annotation.")
        if annotation.get("iscrowd") or annotation["category_id"] not in label_of:
            continue
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    image_folder = folder / "images" if (folder / "images").is_dir() else folder
    found, seen = [], set()
    for entry in images:
        image_id, file_name = entry.get("id"), entry.get("file_name")
        if image_id is None or not file_name or image_id in seen:
            raise DataError(f"Bad COCO image entry. Received: {entry}. Expected a unique 'id' and a 'file_name'. "
                            "Fix: correct the images list.")
        seen.add(image_id)
        image_path = records.inside(folder, image_folder / file_name,
                                    f"the COCO image entry of id {image_id!r} names {file_name!r}")
        if not image_path.is_file():
            raise DataError(f"Image named by the COCO file is missing. Received: {file_name} (image id {image_id}); "
                            f"{image_path} does not exist. Expected it in {image_folder}. Fix: add the image.")
        size = records.image_size(image_path)
        if (entry.get("height"), entry.get("width")) not in ((None, None), size):
            raise DataError(f"Image size disagrees with the COCO file. Received: {file_name} is {size[1]} x {size[0]} "
                            f"px, the JSON says {entry.get('width')} x {entry.get('height')}. Expected the same. "
                            "Fix: correct width/height.")
        objects = by_image.get(image_id, [])
        try:
            boxes = np.asarray([[float(v) for v in annotation["bbox"]] for annotation in objects],
                               np.float32).reshape(-1, 4)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"Bad COCO bbox. Received: an annotation of image {file_name} without a numeric "
                            "'bbox' [x, y, width, height]. Expected four numbers. Fix: correct it.") from None
        boxes[:, 2:] += boxes[:, :2]  # [x, y, w, h] -> [xmin, ymin, xmax, ymax]
        records.check_boxes(boxes, size, file_name, "COCO bbox [x, y, w, h] with w, h > 0 inside the image")
        segmentations = [annotation.get("segmentation") for annotation in objects]
        labels = np.asarray([label_of[annotation["category_id"]] for annotation in objects], np.int32)
        found.append(records.Record(Path(file_name).stem, image_path, size, boxes, labels,
                                     segmentations=segmentations if objects and all(segmentations) else None))
        if found[-1].segmentations is not None:
            rasterize(found[-1])  # a malformed polygon or RLE fails here, not mid-run
    if not found:
        raise DataError(f"No images in the COCO file. Received: {path} with an empty 'images' list. Expected at least "
                        "one image. Fix: export the images too.")
    return records.Index(folder, "coco", found, names)


# The keys each entry of a list must have, with their JSON types
_REQUIRED = {"categories": {"id": int, "name": str}, "annotations": {"image_id": int, "category_id": int},
             "images": {"id": int, "file_name": str}}


def check_structure(path, images, annotations, categories):
    """DataError naming the first entry of the wrong structure (a category without an id, an image that is a string,
    a file_name that is a number, ...)."""
    for name, entries in (("categories", categories), ("annotations", annotations), ("images", images)):
        if not isinstance(entries, list):
            raise DataError(f"Bad COCO annotation file: '{name}' is not a list. Received: {path} has {name} of type "
                            f"{type(entries).__name__}. Expected a list of objects. Fix: export COCO JSON.")
        keys = _REQUIRED[name]
        for number, entry in enumerate(entries):
            wrong = "it is not an object" if not isinstance(entry, dict) else next(
                (f"its {key!r} is {'missing' if key not in entry else type(entry[key]).__name__}"
                 for key, kind in keys.items() if not isinstance(entry.get(key), kind) or isinstance(entry[key], bool)),
                None)
            if wrong:
                expected = ", ".join(f"{key!r} ({kind.__name__})" for key, kind in keys.items())
                raise DataError(f"Bad COCO {name[:-1].replace('ie', 'y')} entry: {wrong}. Received: {path} "
                                f"{name}[{number}] = {str(entry)[:100]}. Expected an object with {expected}. "
                                "Fix: correct the entry.")


def rasterize(record):
    """Instance ids from COCO polygons / RLE (pycocotools): 0 background, k = object k. DataError for a malformed
    polygon or RLE."""
    from pycocotools import mask as mask_utils

    height, width = record.size
    mask = np.zeros((height, width), np.uint8)
    for number, segmentation in enumerate(record.segmentations, 1):
        try:
            rles = mask_utils.frPyObjects(segmentation, height, width)
            decoded = mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles)
            mask[decoded.reshape(height, width) > 0] = number
        except Exception as error:  # noqa: BLE001 - pycocotools raises bare Exception ("input type is not supported")
            raise DataError(f"Bad COCO segmentation. Received: object {number} of {record.image_path.name} "
                            f"({type(error).__name__}: {str(error)[:200]}): {str(segmentation)[:100]}. Expected "
                            f"polygons [[x1, y1, x2, y2, ...], ...] or an RLE {{'counts', 'size': [{height}, "
                            f"{width}]}} of the image's size. Fix: correct or remove the segmentation.") from None
    return mask
