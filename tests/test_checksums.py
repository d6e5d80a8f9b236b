"""shared.checksums: the `sha256sum` lists every app checks before a run (speech, photographs, fraud's pickles)."""

import hashlib

import pytest

from shared import checksums
from shared.errors import DataError


def _folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.bin").write_bytes(b"alpha")
    (tmp_path / "b.txt").write_text("beta")
    digest = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ("data/a.bin", "b.txt")}
    # Text mode (two spaces) and binary mode (" *"), as `sha256sum` and `sha256sum -b` write them.
    (tmp_path / "SHA256SUMS").write_text(f"{digest['data/a.bin']}  data/a.bin\n\n{digest['b.txt']} *b.txt\n")
    return tmp_path / "SHA256SUMS", digest


def test_a_list_reads_in_both_modes_and_every_listed_file_verifies(tmp_path):
    sums, digest = _folder(tmp_path)
    assert checksums.read_sums(sums) == {(tmp_path / "data" / "a.bin").resolve(): digest["data/a.bin"],
                                         (tmp_path / "b.txt").resolve(): digest["b.txt"]}
    assert checksums.sha256_of(tmp_path / "b.txt") == digest["b.txt"]
    checksums.verify(sums)


def test_a_changed_or_missing_file_is_named(tmp_path):
    sums, digest = _folder(tmp_path)
    (tmp_path / "b.txt").write_text("beta, changed")
    with pytest.raises(DataError, match=rf"^Checksum mismatch for .*b\.txt\. Received: sha256=[0-9a-f]{{64}}\. "
                                        rf"Expected: {digest['b.txt']} \(from .*SHA256SUMS\)"):
        checksums.verify(sums)
    (tmp_path / "b.txt").unlink()
    with pytest.raises(DataError, match=r"^File listed in SHA256SUMS is missing\. Received: .*b\.txt does not exist"):
        checksums.verify(sums)


def test_a_malformed_line_names_its_number(tmp_path):
    sums, _ = _folder(tmp_path)
    sums.write_text(sums.read_text() + "abc  c.txt\n")
    with pytest.raises(DataError, match=r"^Malformed line in .*SHA256SUMS, line 4\. Received: 'abc  c\.txt'"):
        checksums.read_sums(sums)
