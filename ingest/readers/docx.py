"""DOCX: headings (styles "Title", "Heading 1".."Heading 9") make the section path; paragraphs and
tables in document order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docstack.ingest.readers.base import ReadError, Record, Sections, WholeFileReader, brief, clean, quiet

_DOCX_HEADING = re.compile(r"heading ([1-9])")


class DocxReader(WholeFileReader):
    suffixes = (".docx",)

    def read(self, path: Path) -> list[Record]:
        return read_docx(path)


def read_docx(path: Path) -> list[Record]:
    """One record per section; headings (styles "Title", "Heading 1".."Heading 9") make the path.
    Tables come in document order, a row per line with cells joined by " | "."""
    import docx
    from docx.table import Table

    try:
        with quiet("docx"):
            document = docx.Document(str(path))
            sections = Sections()
            for block in document.iter_inner_content():
                if isinstance(block, Table):
                    sections.add(_docx_table(block))
                else:
                    _docx_paragraph(block, sections)
            sections.flush()
    except Exception as exc:  # not a zip, a missing part, broken XML: python-docx fails in many ways
        raise ReadError(f"not a readable DOCX ({brief(exc)})") from exc
    return sections.records


def _docx_paragraph(paragraph: Any, sections: Sections) -> None:
    text = paragraph.text.strip()
    if not text:
        return
    level = _docx_heading_level(paragraph)
    if level is None:
        sections.add(text)
    else:
        sections.heading(level, clean(text))


def _docx_heading_level(paragraph: Any) -> int | None:
    name = (paragraph.style.name if paragraph.style is not None else "").strip().lower()
    if name == "title":
        return 0  # the document's title sits above its "Heading 1" chapters
    match = _DOCX_HEADING.fullmatch(name)
    return int(match.group(1)) if match else None


def _docx_table(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells, last = [], None
        for cell in row.cells:
            if cell._tc is not last:  # a merged cell is listed once per grid column it spans
                cells.append(clean(cell.text))
            last = cell._tc
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
