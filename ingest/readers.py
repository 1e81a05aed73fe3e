"""Readers turn one file into records: a page of a PDF, a section of a Markdown file, a text file.

Each record keeps where its text came from (1-based page, heading path) so that every chunk cut
from it can cite its place."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from docstack.console import DocstackError

log = logging.getLogger(__name__)


class ReadError(DocstackError):
    """A file that cannot be read; the message names the reason in one line."""


@dataclass(frozen=True)
class Record:
    text: str
    page: int | None = None
    section: str | None = None


def read_pdf(path: Path) -> list[Record]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise ReadError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ReadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ReadError(f"not a readable PDF ({exc.__class__.__name__}: {str(exc)[:120]})") from exc
    if pages and not any(p.strip() for p in pages):
        log.warning("%s: no text layer (scanned?)", path)
    return [Record(text=text, page=number) for number, text in enumerate(pages, start=1) if text.strip()]


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def read_markdown(path: Path) -> list[Record]:
    """One record per section; `section` is the heading path, e.g. ``Install > Offline``."""
    records: list[Record] = []
    trail: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            records.append(Record(text=text, section=" > ".join(t for _, t in trail) or None))
        lines.clear()

    for line in _read_text(path).splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, match.group(2))]
        lines.append(line)
    flush()
    return records


def read_text(path: Path) -> list[Record]:
    text = _read_text(path)
    return [Record(text=text)] if text.strip() else []


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ReadError("binary data, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        log.info("%s: not UTF-8, decoded as Latin-1", path)
        return data.decode("latin-1")


READERS = {
    ".pdf": read_pdf,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".text": read_text,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in READERS


def read_document(path: Path) -> list[Record]:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ReadError(f"unsupported file type '{path.suffix or path.name}'")
    return reader(path)
