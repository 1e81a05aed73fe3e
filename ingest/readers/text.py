"""Plain text and reStructuredText: one record; UTF-8, else Latin-1."""

from __future__ import annotations

import logging
from pathlib import Path

from docstack.ingest.readers.base import ReadError, Record, WholeFileReader

log = logging.getLogger(__name__)


class TextReader(WholeFileReader):
    suffixes = (".txt", ".text", ".rst")

    def read(self, path: Path) -> list[Record]:
        return read_text(path)


def read_text(path: Path) -> list[Record]:
    text = decode_text(path)
    return [Record(text=text)] if text.strip() else []


def decode_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ReadError("binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        log.info("%s: not UTF-8, decoded as Latin-1", path)
        return data.decode("latin-1")
