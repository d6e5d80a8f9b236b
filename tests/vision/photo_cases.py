"""Tiny photo folders in the official layouts, and the detection task's harness case.

`write_penn_fudan(folder)` writes a Penn-Fudan folder (`PennFudanPed/{PNGImages,PedMasks,Annotation}`, PASCAL
v1.00 text with 1-based inclusive corners, instance-id masks) of small photos of different sizes, each with
one to three "pedestrians" (bright upright rectangles on a dark noisy background, the mask id k inside box k).
`write_voc(folder)` and `write_coco(folder)` write the same kind of photos in the VOC and COCO layouts.
The segmentation case can use the same writers.
"""

import json
import re

import numpy as np
from PIL import Image

from shared.errors import ConfigError, DataError
from tests.harness import BadInput, TaskCase

SIZES = ((96, 128), (128, 96), (80, 112), (112, 80), (96, 96), (64, 128))  # (height, width)


def tiny_photos(count=12, seed=0):
    """[(name, image uint8 [H, W, 3], boxes int [n, 4] as 0-based (xmin, ymin, xmax, ymax) edges, mask)]."""
    rng = np.random.default_rng(seed)
    photos = []
    for number in range(count):
        height, width = SIZES[number % len(SIZES)]
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), np.uint8)
        boxes = []
        for k in range(1, 1 + number % 3 + 1):
            box_width, box_height = int(rng.integers(14, 24)), int(rng.integers(height // 2, height - 6))
            xmin = 4 + (k - 1) * (width - 8) // 3 + int(rng.integers(0, 4))
            ymin = int(rng.integers(2, height - box_height - 1))
            image[ymin:ymin + box_height, xmin:xmin + box_width] = rng.integers(170, 255, 3)
            mask[ymin:ymin + box_height, xmin:xmin + box_width] = k
            boxes.append([xmin, ymin, xmin + box_width, ymin + box_height])
        site = "FudanPed" if number % 2 else "PennPed"
        photos.append((f"{site}{number + 1:05d}", image, np.asarray(boxes), mask))
    return photos


def pascal_v1(name, image, boxes):
    """A PASCAL Annotation Version 1.00 text, corners 1-based inclusive."""
    height, width = image.shape[:2]
    labels = " ".join('"PASpersonWalking"' for _ in boxes)
    lines = ["# Compatible with PASCAL Annotation Version 1.00",
             f'Image filename : "PennFudanPed/PNGImages/{name}.png"',
             f"Image size (X x Y x C) : {width} x {height} x 3",
             'Database : "The Penn-Fudan-Pedestrian Database"',
             f"Objects with ground truth : {len(boxes)} {{ {labels} }}", "# Top left pixel co-ordinates : (1, 1)"]
    for k, (xmin, ymin, xmax, ymax) in enumerate(boxes, 1):
        lines += ["", f'# Details for pedestrian {k} ("PASpersonWalking")',
                  f'Original label for object {k} "PASpersonWalking" : "PennFudanPed"',
                  f'Bounding box for object {k} "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : '
                  f"({xmin + 1}, {ymin + 1}) - ({xmax}, {ymax})",
                  f'Pixel mask for object {k} "PASpersonWalking" : "PennFudanPed/PedMasks/{name}_mask.png"']
    return "\n".join(lines) + "\n\n"


def write_penn_fudan(folder, count=12):
    root = folder / "PennFudanPed"
    for sub in ("PNGImages", "PedMasks", "Annotation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, image, boxes, mask in tiny_photos(count):
        Image.fromarray(image).save(root / "PNGImages" / f"{name}.png")
        Image.fromarray(mask, mode="L").save(root / "PedMasks" / f"{name}_mask.png")
        (root / "Annotation" / f"{name}.txt").write_text(pascal_v1(name, image, boxes))
    return folder


def write_voc(folder, count=12, names=("pedestrian", "bicycle")):
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    (folder / "JPEGImages").mkdir(exist_ok=True)
    for number, (name, image, boxes, _mask) in enumerate(tiny_photos(count)):
        Image.fromarray(image).save(folder / "JPEGImages" / f"{name}.png")
        objects = "".join(
            f"<object><name>{names[(number + k) % len(names)]}</name><difficult>0</difficult><bndbox>"
            f"<xmin>{xmin + 1}</xmin><ymin>{ymin + 1}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
            for k, (xmin, ymin, xmax, ymax) in enumerate(boxes))
        (folder / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><folder>JPEGImages</folder><filename>{name}.png</filename><size><width>{image.shape[1]}"
            f"</width><height>{image.shape[0]}</height><depth>3</depth></size>{objects}</annotation>")
    return folder


def write_coco(folder, count=12, names=("pedestrian", "bicycle")):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    document = {"images": [], "annotations": [],
                "categories": [{"id": 10 * (index + 1), "name": name} for index, name in enumerate(names)]}
    for number, (name, image, boxes, _mask) in enumerate(tiny_photos(count), 1):
        Image.fromarray(image).save(folder / "images" / f"{name}.png")
        document["images"].append({"id": number, "file_name": f"{name}.png", "height": image.shape[0],
                                   "width": image.shape[1]})
        for k, (xmin, ymin, xmax, ymax) in enumerate(boxes.tolist()):
            polygon = [xmin, ymin, xmax, ymin, xmax, ymax, xmin, ymax]
            document["annotations"].append({
                "id": len(document["annotations"]) + 1, "image_id": number,
                "category_id": 10 * ((number + k) % len(names) + 1), "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                "area": (xmax - xmin) * (ymax - ymin), "iscrowd": 0, "segmentation": [[float(v) for v in polygon]]})
    (folder / "annotations.json").write_text(json.dumps(document))
    return folder


# === Bad inputs ===


def _rewrite_annotation(change):
    def break_data(folder):
        path = folder / "PennFudanPed" / "Annotation" / "PennPed00001.txt"
        path.write_text(change(path.read_text()))
        return folder

    return break_data


def _remove(relative):
    def break_data(folder):
        (folder / relative).unlink()
        return folder

    return break_data


def _truncated_png(folder):
    """A PNG cut in its pixel data: its header reads, its pixels do not (found only after a run opened before)."""
    path = folder / "PennFudanPed" / "PNGImages" / "FudanPed00004.png"
    path.write_bytes(path.read_bytes()[:-200])
    return folder


def _not_png(folder):
    (folder / "PennFudanPed" / "PNGImages" / "FudanPed00002.png").write_bytes(b"%PDF-1.4 not a picture")
    return folder


DETECTION = TaskCase(
    make_data=write_penn_fudan,
    overrides=("epochs=1", "batch_size=4"),
    metrics=("test_map", "test_ap50", "test_ap75", "test_ar100"),
    bad_inputs=(
        BadInput(DataError, r"Data directory not found\. Received: --data-dir .*missing",
                 break_data=lambda folder: folder / "missing"),
        BadInput(DataError, r"No penn_fudan_ped data found\. Received: --data-dir .*empty .*Expected photos in the "
                            r"penn_fudan layout \(PennFudanPed/PNGImages",
                 break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
        BadInput(DataError, r"Penn-Fudan file missing\. Received: .*PennPed00003_mask\.png does not exist",
                 break_data=_remove("PennFudanPed/PedMasks/PennPed00003_mask.png")),
        BadInput(DataError, r"Box outside its image\. Received: .*PennPed00001\.txt box 1 = \[3, ",
                 break_data=_rewrite_annotation(lambda text: re.sub(r": \(\d+, \d+\) - \(\d+, \d+\)",
                                                                     ": (3, 3) - (999, 40)", text))),
        BadInput(DataError, r"Boxes disagree with the object count\. Received: .*PennPed00001\.txt says 5 objects",
                 break_data=_rewrite_annotation(lambda text: text.replace("ground truth : 1", "ground truth : 5"))),
        BadInput(DataError, r"Unreadable image file .*FudanPed00002\.png", break_data=_not_png),
        BadInput(DataError, r"Unreadable image file .*FudanPed00004\.png\. Received: .*truncated",
                 break_data=_truncated_png),
        BadInput(ConfigError, r"Received: data_format='yolo'\. Expected one of: penn_fudan, voc, coco",
                 overrides=("data_format=yolo",)),
        BadInput(ConfigError, r"Received: image_size=100\. Expected a multiple of 32", overrides=("image_size=100",)),
        BadInput(ConfigError, r"Invalid value for config key encoder_learning_rate\. Received: encoder_learning_rate=0",
                 overrides=("encoder_learning_rate=0",)),
        BadInput(ConfigError, r"No pretrained weights for this backbone here\. Received: backbone='resnet18' with "
                              r"pretrained=True\. .*Fix: --set pretrained=false", overrides=("pretrained=true",)),
    ),
)


# === Segmentation: the same Penn-Fudan writer (its masks), plus a COCO folder without polygons ===


def _coco_without_masks(folder):
    """A COCO folder whose annotations carry boxes but no 'segmentation': nothing to learn masks from."""
    target = folder / "coco"
    (target / "images").mkdir(parents=True)
    document = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "pedestrian"}]}
    for number, (name, image, boxes, _mask) in enumerate(tiny_photos(), 1):
        Image.fromarray(image).save(target / "images" / f"{name}.png")
        document["images"].append({"id": number, "file_name": f"{name}.png"})
        for xmin, ymin, xmax, ymax in boxes.tolist():
            document["annotations"].append({"id": len(document["annotations"]) + 1, "image_id": number,
                                            "category_id": 1, "bbox": [xmin, ymin, xmax - xmin, ymax - ymin]})
    (target / "annotations.json").write_text(json.dumps(document))
    return target


SEGMENTATION = TaskCase(
    make_data=write_penn_fudan,
    overrides=("epochs=1", "batch_size=4"),
    metrics=("test_iou", "test_dice", "test_pixel_accuracy", "test_miou", "test_mean_image_iou"),
    bad_inputs=(
        BadInput(DataError, r"No penn_fudan_ped data found\. Received: --data-dir .*empty .*Expected photos in the "
                            r"penn_fudan layout \(PennFudanPed/PNGImages",
                 break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
        BadInput(DataError, r"Penn-Fudan file missing\. Received: .*PennPed00003_mask\.png does not exist",
                 break_data=_remove("PennFudanPed/PedMasks/PennPed00003_mask.png")),
        BadInput(DataError, r"Unreadable image file .*FudanPed00004\.png\. Received: .*truncated",
                 break_data=_truncated_png),
        BadInput(DataError, r"Photos without masks\. Received: 12 of 12 photos in .*coco .*Expected a mask for every "
                            r"photo", overrides=("data_format=coco",), break_data=_coco_without_masks),
        BadInput(ConfigError, r"Received: data_format='voc'\. Expected one of: penn_fudan, coco",
                 overrides=("data_format=voc",)),
        BadInput(ConfigError, r"Received: image_size=100\. Expected a multiple of 32", overrides=("image_size=100",)),
        BadInput(ConfigError, r"Received: threshold=1\.5", overrides=("threshold=1.5",)),
        BadInput(ConfigError, r"Received: test_time_flip=True with random_flip=False\. Expected test_time_flip only "
                              r"for a model trained on mirrored images",
                 overrides=("test_time_flip=true", "random_flip=false")),
        BadInput(ConfigError, r"Received: test_time_sizes=\(352, 500\), with 500\. Expected a multiple of 32 .*"
                              r"Fix: --set test_time_sizes=352,480", overrides=("test_time_sizes=352,500",)),
        BadInput(ConfigError, r"Received: backbone='resnet50'\. Expected one of: efficientnet_lite0, resnet18",
                 overrides=("backbone=resnet50",)),
    ),
)
