"""Readers turn one file into records: a page of a PDF, a section of a Markdown, HTML or DOCX file,
a text file. One module per format, each a `Reader` (see `base`); this is their registry.

Each record keeps where its text came from (1-based page, heading path) so that every chunk cut
from it can cite its place. Paragraphs inside a record are separated by blank lines, which is where
the chunker prefers to cut."""

from __future__ import annotations

import logging
from pathlib import Path

from docstack.ingest.readers.base import Part, ReadError, Reader, Record
from docstack.ingest.readers.docx import DocxReader
from docstack.ingest.readers.html import HtmlReader
from docstack.ingest.readers.markdown import MarkdownReader
from docstack.ingest.readers.pdf import PdfReader
from docstack.ingest.readers.text import TextReader

log = logging.getLogger(__name__)

READERS: dict[str, Reader] = {suffix: reader for reader in (PdfReader(), HtmlReader(), DocxReader(),
                                                            MarkdownReader(), TextReader())
                              for suffix in reader.suffixes}

__all__ = ["Part", "ReadError", "Reader", "Record", "READERS", "reader_for", "read_document", "supported"]


def supported(path: Path) -> bool:
    return path.suffix.lower() in READERS


def reader_for(path: Path) -> Reader:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ReadError(f"unsupported file type '{path.suffix or path.name}'")
    return reader


def read_document(path: Path) -> list[Record]:
    """All records of a file, read here and now (the pipeline spreads the parts over workers)."""
    reader = reader_for(path)
    parts = reader.plan(path, path.stat().st_size)
    return list(reader.records(path, (reader.parse(part) for part in parts),
                               lambda warning: log.warning("%s: %s", path, warning)))
