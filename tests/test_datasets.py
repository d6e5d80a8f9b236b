"""shared.datasets.find_dataset: one lookup order and one error message for every app's data."""

import pytest

from shared.datasets import find_dataset
from shared.errors import DataError


def has_marker(folder):
    return (folder / "marker.txt").is_file()


def make(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "marker.txt").write_text("x")
    return folder


def find(data_dir=None, **options):
    return find_dataset("toy", data_dir, looks_right=has_marker, expected="marker.txt", **options)


def test_data_dir_itself_then_its_dataset_folder_then_a_subfolder(tmp_path, monkeypatch):
    monkeypatch.delenv("DLSUITE_DATA_DIR", raising=False)
    inner = make(tmp_path / "root" / "toy" / "v1")
    assert find(tmp_path / "root", subfolders=("v1",)) == inner
    outer = make(tmp_path / "root" / "toy")
    assert find(tmp_path / "root", subfolders=("v1",)) == outer
    assert find(outer) == outer


def test_environment_variable_then_system_folders_then_the_fallback(tmp_path, monkeypatch):
    system = make(tmp_path / "system")
    monkeypatch.delenv("DLSUITE_DATA_DIR", raising=False)
    assert find(system_dirs=[system]) == system
    assert find(system_dirs=[tmp_path / "nothing"], fallback="tfds") == "tfds"
    monkeypatch.setenv("DLSUITE_DATA_DIR", str(tmp_path / "datasets"))
    from_environment = make(tmp_path / "datasets" / "toy")
    assert find(system_dirs=[system]) == from_environment


def test_a_missing_data_dir_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"Data directory not found. Received: --data-dir .*nope\. Expected a folder "
                                        r"holding marker.txt .*Fix the path"):
        find(tmp_path / "nope", fallback="tfds")


def test_nothing_found_lists_where_it_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DLSUITE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"No toy data found. Received: DLSUITE_DATA_DIR=.* \(looked in .*toy\)\. "
                                        r"Expected marker.txt\. Fix: --data-dir"):
        find()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"Received: --data-dir .*empty \(looked in .*empty, .*empty/toy\)"):
        find(tmp_path / "empty", fallback="tfds")  # a named folder never falls back
