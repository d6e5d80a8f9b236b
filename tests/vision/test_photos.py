"""The photo readers (apps/vision/photos/): Penn-Fudan on the real folder, VOC and COCO on tiny written files,
the seeded split both photo tasks share, and bad folders refused with a DataError before any work."""

import json
import re
import struct
import zlib

import numpy as np
import pytest

from apps.vision.photos import data as photos
from apps.vision.photos.penn_fudan import PENN_FUDAN
from shared.errors import DataError
from tests.vision.photo_cases import tiny_photos, write_coco, write_penn_fudan, write_voc


@pytest.fixture(scope="module")
def penn_fudan(data_root):
    folder = data_root / PENN_FUDAN
    return folder, photos.load(photos.check_source(folder, "penn_fudan"))


def test_penn_fudan_real_folder_counts_boxes_and_masks(penn_fudan):
    folder, every = penn_fudan
    assert len(every) == 170 and every.num_objects == 423  # the dataset README's counts
    assert every.class_names == ["pedestrian"] and all((labels == 0).all() for labels in every.labels)
    assert sum(name.startswith("PennPed") for name in every.names) == 96
    first = every.names.index("FudanPed00001")
    # Annotation/FudanPed00001.txt: (160, 182) - (302, 431) and (420, 171) - (535, 486), 1-based inclusive.
    np.testing.assert_array_equal(every.boxes[first], [[159, 181, 302, 431], [419, 170, 535, 486]])
    assert every.images[first].shape == (536, 559, 3) and every.images[first].dtype == np.uint8
    assert every.masks[first].shape == (536, 559)
    # The README: for 407 of the 423 pedestrians the box is the mask's tight box (0-based edges here).
    exact = 0
    for boxes, mask in zip(every.boxes, every.masks):
        for k, box in enumerate(boxes, 1):
            rows, columns = np.nonzero(mask == k)
            exact += np.array_equal(box, [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1])
    assert exact == 407


def test_split_is_seeded_70_10_20_and_keeps_both_sites_everywhere(penn_fudan):
    _, every = penn_fudan
    parts = photos.split_indices(every.names)
    assert {split: len(indices) for split, indices in parts.items()} == {"train": 119, "validation": 17, "test": 34}
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(170))  # disjoint and complete
    for indices in parts.values():
        assert {every.names[i][:4] for i in indices} == {"Fuda", "Penn"}
    again, other = photos.split_indices(every.names), photos.split_indices(every.names, seed=7)
    assert all(np.array_equal(parts[split], again[split]) for split in parts)
    assert not np.array_equal(parts["test"], other["test"])


def test_penn_fudan_written_folder_round_trips(tmp_path):
    write_penn_fudan(tmp_path, count=6)
    every = photos.load(photos.check_source(tmp_path / "PennFudanPed", "penn_fudan"))  # the inner folder works too
    for (name, image, boxes, mask), got in zip(sorted(tiny_photos(6), key=lambda photo: photo[0]), range(6)):
        assert every.names[got] == name
        np.testing.assert_array_equal(every.images[got], image)
        np.testing.assert_array_equal(every.boxes[got], boxes)
        np.testing.assert_array_equal(every.masks[got], mask)


def test_voc_reader(tmp_path):
    write_voc(tmp_path, count=4)
    index = photos.check_source(tmp_path, "voc")
    every = photos.load(index)
    assert every.class_names == ["bicycle", "pedestrian"] and every.masks == [None] * 4
    truth = {name: (image, boxes) for name, image, boxes, _ in tiny_photos(4)}
    for number, name in enumerate(every.names):
        np.testing.assert_array_equal(every.images[number], truth[name][0])
        np.testing.assert_array_equal(every.boxes[number], truth[name][1])  # VOC's 1-based inclusive -> edges
    # write_voc names object k of photo n ("pedestrian", "bicycle")[(n + k) % 2]
    np.testing.assert_array_equal(every.labels[every.names.index("FudanPed00002")], [0, 1])
    only = photos.check_source(tmp_path, "voc", class_names=("pedestrian", "bicycle"))
    assert only.class_names == ["pedestrian", "bicycle"]


def test_coco_reader_with_polygon_masks(tmp_path):
    write_coco(tmp_path, count=4)
    every = photos.load(photos.check_source(tmp_path, "coco"))
    assert every.class_names == ["pedestrian", "bicycle"]  # by category id (10, 20), not by name
    for number, (name, image, boxes, mask) in enumerate(tiny_photos(4)):
        assert every.names[number] == name
        np.testing.assert_array_equal(every.images[number], image)
        np.testing.assert_allclose(every.boxes[number], boxes)  # [x, y, w, h] -> edges
        assert np.mean(every.masks[number] == mask) > 0.97  # the rectangle polygons, rasterized by pycocotools
        assert set(np.unique(every.masks[number])) == set(range(len(boxes) + 1))
    np.testing.assert_array_equal(every.labels[1], [0, 1])  # image id 2: category 10 * ((2 + k) % 2 + 1)


def _edit_json(folder, change):
    path = folder / "annotations.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _edit_xml(folder, pattern, replacement):
    path = folder / "Annotations" / "PennPed00001.xml"
    path.write_text(re.sub(pattern, replacement, path.read_text(), count=1))


def _bomb(path):
    """A valid PNG header claiming 30000 x 30000 pixels, and no pixels: 74 bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("layout", "breaks", "message"), [
    ("voc", lambda folder: (folder / "JPEGImages" / "PennPed00001.png").unlink(),
     r"Image named by a VOC annotation is missing\. Received: PennPed00001\.xml names PennPed00001\.png"),
    ("voc", lambda folder: (folder / "Annotations" / "PennPed00001.xml").write_text("<annotation><filename>"),
     r"Unreadable VOC annotation\. Received: .*PennPed00001\.xml"),
    ("voc", lambda folder: [path.unlink() for path in (folder / "Annotations").glob("*.xml")],
     r"No VOC annotations in the data directory"),
    ("coco", lambda folder: (folder / "annotations.json").unlink(), r"No COCO annotation file in the data directory"),
    ("coco", lambda folder: (folder / "annotations.json").write_text("{}"),
     r"Not a COCO annotation file\. Received: .*annotations\.json \(KeyError"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["annotations"][0].update(bbox=[100, 0, 500, 10])),
     r"Box outside its image\. Received: PennPed00001\.png box 1"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["annotations"][0].update(category_id=99)),
     r"Bad COCO annotation\. Received: annotations\[0\] has image_id=1, category_id=99"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["images"][0].update(width=999)),
     r"Image size disagrees with the COCO file\. Received: PennPed00001\.png is 128 x 96 px"),
    # Files named outside the data folder are never opened
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["images"][0].update(file_name="../../../etc/passwd")),
     r"File outside the data folder\. Received: the COCO image entry of id 1 names '\.\./\.\./\.\./etc/passwd', "
     r"which is .*images/\.\./\.\./\.\./etc/passwd\. Expected a path inside"),
    ("voc", lambda folder: _edit_xml(folder, "<filename>PennPed00001.png", "<filename>../../../etc/passwd"),
     r"File outside the data folder\. Received: PennPed00001\.xml names '\.\./\.\./\.\./etc/passwd', which is "),
    # NaN compares false: such boxes passed and crashed RetinaNet's label encoder
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["annotations"][0].update(bbox=[float("nan"), 10, 5, 9])),
     r"Box outside its image\. Received: PennPed00001\.png box 1 .* = \[nan, 10\.0, nan, 19\.0\]"),
    ("voc", lambda folder: _edit_xml(folder, r"<xmin>\d+</xmin>", "<xmin>nan</xmin>"),
     r"Box outside its image\. Received: PennPed00001\.xml box 1 .* = \[nan, "),
    # COCO JSON of the wrong structure: a traceback (exit 1) before
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc.update(categories=[1, 2])),
     r"Bad COCO category entry: it is not an object\. Received: .*annotations\.json categories\[0\] = 1\. "
     r"Expected an object with 'id' \(int\), 'name' \(str\)"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["categories"][1].pop("id")),
     r"Bad COCO category entry: its 'id' is missing\. Received: .* categories\[1\] = \{'name': 'bicycle'\}"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc.update(annotations=[[1, 2, 3]])),
     r"Bad COCO annotation entry: it is not an object\. Received: .* annotations\[0\] = \[1, 2, 3\]"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc.update(images=["x.png"])),
     r"Bad COCO image entry: it is not an object\. Received: .* images\[0\] = x\.png"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["images"][2].update(file_name=5)),
     r"Bad COCO image entry: its 'file_name' is int\. Received: .* images\[2\] = "),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc.update(images={"file_name": "x.png"})),
     r"Bad COCO annotation file: 'images' is not a list\. Received: .* images of type dict"),
    # A malformed RLE raised ValueError mid-run, when the masks were drawn
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["annotations"][0].update(
        segmentation={"counts": [5, 3], "size": [10, 10]})),
     r"Bad COCO segmentation\. Received: object 1 of PennPed00001\.png \(ValueError: cannot reshape array of size "
     r"100 into shape \(96,128\)\)"),
    ("coco", lambda folder: _edit_json(folder, lambda doc: doc["annotations"][0].update(
        segmentation={"counts": "not an RLE", "size": [96, 128]})),
     r"Bad COCO segmentation\. Received: object 1 of PennPed00001\.png .*Expected polygons"),
    # A 74-byte PNG whose header says 30000 x 30000: PIL's DecompressionBombError was a traceback
    ("coco", lambda folder: _bomb(folder / "images" / "FudanPed00002.png"),
     r"Unreadable image file .*FudanPed00002\.png\. Received: Image size \(900000000 pixels\) exceeds limit"),
])
def test_bad_voc_and_coco_folders_are_refused(tmp_path, layout, breaks, message):
    folder = {"voc": write_voc, "coco": write_coco}[layout](tmp_path, count=3)
    breaks(folder)
    with pytest.raises(DataError, match=message):
        photos.check_source(folder, layout)


def test_unknown_class_and_wrong_format_are_refused(tmp_path):
    write_voc(tmp_path, count=3)
    with pytest.raises(DataError, match=r"Unknown class in a VOC annotation\. Received: .* has 'bicycle'\. "
                                        r"Expected one of: pedestrian\. Fix: --set class_names=pedestrian,bicycle"):
        photos.check_source(tmp_path, "voc", class_names=("pedestrian",))
    with pytest.raises(DataError, match=r"No Penn-Fudan folder in the data directory"):
        photos.check_source(tmp_path, "penn_fudan")


def test_penn_fudan_checksums_and_mask_ids(tmp_path):
    write_penn_fudan(tmp_path, count=3)
    listed = ["PennFudanPed/PNGImages/PennPed00001.png", "PennFudanPed/PedMasks/PennPed00001_mask.png"]
    import hashlib

    sums = [f"{hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()}  {name}" for name in listed]
    (tmp_path / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    photos.check_source(tmp_path, "penn_fudan")  # matches
    with open(tmp_path / listed[0], "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(DataError, match=r"Checksum mismatch for .*PennPed00001\.png"):
        photos.check_source(tmp_path, "penn_fudan")
    (tmp_path / "SHA256SUMS").unlink()
    write_penn_fudan(tmp_path, count=3)
    from PIL import Image

    mask = np.zeros((96, 128), np.uint8)
    mask[10:20, 10:20] = 3  # the annotation has 1 object
    Image.fromarray(mask, mode="L").save(tmp_path / "PennFudanPed" / "PedMasks" / "PennPed00001_mask.png")
    with pytest.raises(DataError, match=r"Mask ids disagree with the boxes\. Received: PennPed00001_mask\.png holds "
                                        r"ids \[3\] for 1 boxes"):
        photos.load(photos.check_source(tmp_path, "penn_fudan"))


def test_missing_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("DLSUITE_DATA_DIR", raising=False)
    with pytest.raises(DataError, match=r"No voc data found\. Received: no --data-dir and DLSUITE_DATA_DIR unset "
                                        r"\(looked in nowhere\)\. Expected photos in the voc layout \(Annotations/"):
        photos.resolve_source("voc")
    with pytest.raises(DataError, match=r"Data directory not found\. Received: --data-dir .*nowhere"):
        photos.resolve_source("coco", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"No coco data found\. Received: --data-dir .*Expected photos in the coco "
                                        r"layout \(annotations\.json"):
        photos.resolve_source("coco", tmp_path)


def test_the_photos_are_found_in_the_data_dir_or_its_dataset_folder(tmp_path, monkeypatch):
    write_penn_fudan(tmp_path / PENN_FUDAN, count=3)
    assert photos.resolve_source("penn_fudan", tmp_path) == tmp_path / PENN_FUDAN  # the datasets' root
    assert photos.resolve_source("penn_fudan", tmp_path / PENN_FUDAN) == tmp_path / PENN_FUDAN
    monkeypatch.setenv("DLSUITE_DATA_DIR", str(tmp_path))
    assert photos.resolve_source("penn_fudan") == tmp_path / PENN_FUDAN
