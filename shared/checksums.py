"""SHA-256 checksums of the files a run reads: the `sha256sum` lists datasets ship (SHA256SUMS), read and checked
the same way by every app, and the digest of one file. No TensorFlow: checks run before any work starts.

    sha256_of(path) -> hex digest (read in blocks)
    read_sums(sums) -> {resolved path: digest}, in the list's order (names are relative to its folder)
    verify(sums) -> every listed file exists and matches, else a DataError naming the file
    mismatch_error(path, actual, expected, source) -> the DataError a caller raises for a file it hashed itself

A file whose bytes are unpickled is hashed from the very bytes that are then unpickled (fraud's daily pickles),
so nothing can change between the check and the load.
"""

import hashlib
import re
from pathlib import Path

from shared.errors import DataError

SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")  # `sha256sum` output: text (two spaces) or binary (" *")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(sums):
    """`{resolved path: sha256}` from a `sha256sum` output file; a malformed line is a DataError naming it."""
    sums = Path(sums)
    try:
        text = sums.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"Cannot read {sums}: {error}. Expected `sha256sum` output; restore the file.") from None
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = SUMS_LINE.match(line.rstrip("\r"))
        if match is None:
            raise DataError(
                f"Malformed line in {sums}, line {number}. Received: {line[:120]!r}. Expected `sha256sum` output: "
                "64 hex digits, two spaces, a path relative to the list's folder (e.g. '228ab6...5240  "
                "recordings/0_george_0.wav'). Fix: restore the file from the dataset's source (regenerating it "
                "would bless corrupted files)."
            )
        entries[(sums.parent / match.group(2)).resolve()] = match.group(1).lower()
    return entries


def mismatch_error(path, actual, expected, source, consequence=""):
    """`consequence` follows the path, e.g. ": refusing to unpickle it"."""
    return DataError(f"Checksum mismatch for {path}{consequence}. Received: sha256={actual}. Expected: {expected} "
                     f"(from {source}). The file was changed or corrupted; restore the original from the dataset's "
                     "source.")


def verify(sums):
    """Check every file `sums` lists: it exists and its SHA-256 matches."""
    for path, expected in read_sums(sums).items():
        if not path.is_file():
            raise DataError(f"File listed in SHA256SUMS is missing. Received: {path} does not exist. Expected every "
                            f"file {sums} lists. Fix: restore it from the dataset's source, or remove its line from "
                            f"{sums}.")
        actual = sha256_of(path)
        if actual != expected:
            raise mismatch_error(path, actual, expected, sums)
