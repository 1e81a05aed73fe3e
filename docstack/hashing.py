"""Content hashes: of files, read in blocks so large files cost no memory; of texts, as the logs
keep them instead of the text itself."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    """The hash the safety and request audit logs keep of a text (so the two can be joined)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
