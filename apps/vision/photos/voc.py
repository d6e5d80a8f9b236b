"""The PASCAL VOC reader: `Annotations/*.xml` (<filename>, <size>, <object><name>, <bndbox> 1-based inclusive)
and `JPEGImages/` holding the images they name.

    check_voc(folder, class_names) -> records.Index: every annotation parsed and every image header read,
        DataError on the first problem
"""

import xml.etree.ElementTree as ElementTree

import numpy as np

from apps.vision.photos import records
from shared.errors import DataError


def check_voc(folder, class_names=None):
    annotations = sorted((folder / "Annotations").glob("*.xml"))
    if not annotations:
        raise DataError(f"No VOC annotations in the data directory. Received: {folder} has no Annotations/*.xml. "
                        f"Expected the PASCAL VOC layout: {records.LAYOUTS['voc']}. Fix: --data-dir <the VOC folder>, "
                        "or --set data_format=coco / penn_fudan.")
    parsed = []
    for path in annotations:
        try:
            root = ElementTree.parse(path).getroot()
        except ElementTree.ParseError as error:
            raise DataError(f"Unreadable VOC annotation. Received: {path}: {error}. Expected PASCAL VOC XML. "
                            "Fix: repair or remove the file.") from None
        filename = root.findtext("filename")
        if not filename:
            raise DataError(f"VOC annotation without <filename>. Received: {path}. Expected <filename> naming an "
                            "image in JPEGImages/. Fix: add it.")
        image_path = records.inside(folder, folder / "JPEGImages" / filename, f"{path.name} names {filename!r}")
        if not image_path.is_file():
            raise DataError(f"Image named by a VOC annotation is missing. Received: {path.name} names {filename}; "
                            f"{image_path} does not exist. Expected it in JPEGImages/. Fix: add the image.")
        objects = []
        for number, item in enumerate(root.iter("object"), 1):
            name, box = (item.findtext("name") or "").strip(), item.find("bndbox")
            try:
                corners = [float(box.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax")]
            except (AttributeError, TypeError, ValueError):
                raise DataError(f"Bad VOC object. Received: {path.name} object {number} ({name or 'no name'}) has no "
                                "numeric <bndbox> xmin/ymin/xmax/ymax. Expected four numbers. Fix: correct it.") from None
            if not name:
                raise DataError(f"Bad VOC object. Received: {path.name} object {number} has no <name>. Expected a class "
                                "name. Fix: add <name>.")
            objects.append((name, corners))
        parsed.append((path, image_path, objects))
    names = list(class_names) if class_names else sorted({name for *_, objects in parsed for name, _ in objects})
    if not names:
        raise DataError(f"No objects in the VOC annotations. Received: {len(parsed)} files in {folder / 'Annotations'} "
                        "without one <object>. Expected at least one labelled box. Fix: annotate the images.")
    found = []
    for path, image_path, objects in parsed:
        size = records.image_size(image_path)
        unknown = [name for name, _ in objects if name not in names]
        if unknown:
            raise DataError(f"Unknown class in a VOC annotation. Received: {path.name} has {unknown[0]!r}. Expected one "
                            f"of: {', '.join(names)}. Fix: --set class_names={','.join(names + [unknown[0]])} or "
                            "relabel the object.")
        boxes = np.asarray([corners for _, corners in objects], np.float32).reshape(-1, 4)
        boxes[:, :2] -= 1  # VOC corners are 1-based and inclusive
        records.check_boxes(boxes, size, path.name, "VOC <bndbox> corners within 1..width, 1..height, min <= max")
        found.append(records.Record(path.stem, image_path, size, boxes,
                                     np.asarray([names.index(name) for name, _ in objects], np.int32)))
    return records.Index(folder, "voc", found, names)
