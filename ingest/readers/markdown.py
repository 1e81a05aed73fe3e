"""Markdown: a record per section; the section is the heading path, e.g. ``Install > Offline``."""

from __future__ import annotations

import re
from pathlib import Path

from docstack.ingest.readers.base import Record, WholeFileReader
from docstack.ingest.readers.text import decode_text

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


class MarkdownReader(WholeFileReader):
    suffixes = (".md", ".markdown")

    def read(self, path: Path) -> list[Record]:
        return read_markdown(path)


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

    for line in decode_text(path).splitlines():
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
