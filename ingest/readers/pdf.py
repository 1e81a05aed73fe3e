"""PDF: the text layer through PDFium, a record per page (1-based page numbers), running headers
and footers dropped, table rows kept on one line. A large PDF is planned as ranges of pages that
workers parse in parallel while earlier ranges are chunked and embedded."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from docstack.console import DocstackError
from docstack.ingest.readers.base import Part, ReadError, Record, Warn, brief
from docstack.ingest.structure import PATH_SEPARATOR, Outline, Section

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\xad\ufffe]")  # NULs from unmapped glyphs, soft hyphens
# (PDFium writes U+FFFE where a word is hyphenated across a line break: "ses\ufffesion" is "session")
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"})
_EDGE = 2  # lines at the top and at the bottom of a page that may be a running header or footer
_RUNNING_SHARE = 0.6
# PDFs larger than this are parsed in ranges of this many pages, in parallel; 50 pages hold
# enough repeats to find their running headers.
SPLIT_BYTES = 1_000_000
SPLIT_PAGES = 50
SCANNED = "no text layer (scanned?)"
# PDFium's view modes of a destination (PDFDEST_VIEW_*).
_XYZ, _FIT, _FITH, _FITB, _FITBH = 1, 2, 3, 6, 7


class PdfReader:
    suffixes = (".pdf",)
    empty = SCANNED

    def plan(self, path: Path, size: int) -> list[Part]:
        if size < SPLIT_BYTES:
            return [Part(path)]
        try:
            pages = page_count(path)
        except (DocstackError, OSError):
            return [Part(path)]  # parsing it reports the error
        return [Part(path, start, min(start + SPLIT_PAGES, pages)) for start in range(0, pages, SPLIT_PAGES)] \
            or [Part(path)]

    def parse(self, part: Part) -> list[list[str]]:
        """The non-empty lines of each page of the part."""
        return page_lines(part.path, part.start, part.stop)

    def records(self, path: Path, parsed: Iterable[list[list[str]]], warn: Warn) -> Iterator[Record]:
        """Records page by page, range by range; the running headers found in earlier ranges are
        dropped from later ones too, so a last range of one or two pages loses them as well."""
        running: set[str] = set()
        first_page = 1
        blank = total = 0
        for pages in parsed:
            blank += sum(1 for lines in pages if not lines)
            total += len(pages)
            pages = _drop_running_lines(pages, running)
            yield from (Record(text="\n".join(lines), page=number)
                        for number, lines in enumerate(pages, start=first_page) if lines)
            first_page += len(pages)
        if total and blank == total:
            warn(f"{SCANNED}")
        elif blank:
            log.info("%s: %d of %d pages have no text", path, blank, total)

    def pages(self, parts: list[Part]) -> int | None:
        return parts[-1].stop if parts[-1].stop is not None else None

    def outline(self, path: Path) -> Outline | None:
        """The PDF's bookmarks as a section tree, and its printed page labels: both are read in
        milliseconds (517 bookmarks and 1,158 labels of the Octave manual: 7 ms)."""
        try:
            with open_pdf(path) as pdf:
                return Outline(_bookmarks(pdf), _page_labels(pdf))
        except (DocstackError, OSError):
            return None  # parsing it reports the error


def _bookmarks(pdf: Any) -> list[Section]:
    """Bookmarks in document order; a section that starts at the top of its page (as chapters
    do) does not share that page with the section before it (see structure._with_end_pages)."""
    sections, paths = [], []
    for mark in pdf.get_toc(max_depth=16):
        title = " ".join((mark.get_title() or "").split())
        dest = mark.get_dest()
        if not title or dest is None or dest.get_index() is None:
            continue
        level = mark.level + 1
        paths = paths[: level - 1] + [title]
        top = _starts_at_top(pdf, dest)
        sections.append(Section(title, level, dest.get_index() + 1, None, PATH_SEPARATOR.join(paths),
                                fresh_page=top))
    return sections


def _starts_at_top(pdf: Any, dest: Any) -> bool:
    """Whether a bookmark's destination is the top of its page: a whole-page view (Fit), or a
    view whose top edge is in the page's top 15%."""
    try:
        mode, view = dest.get_view()
        height = pdf[dest.get_index()].get_height()
    except Exception:  # a destination without a view
        return False
    if mode in (_FIT, _FITB):
        return True
    top = view[1] if mode == _XYZ and len(view) > 1 else view[0] if mode in (_FITH, _FITBH) and view else None
    return top is not None and top >= 0.85 * height


def _page_labels(pdf: Any) -> list[str] | None:
    """The printed label of each page (a manual's page "1" is often PDF page 17), or None when
    the PDF defines no labels."""
    import ctypes

    import pypdfium2.raw as raw

    labels = []
    for index in range(len(pdf)):
        size = raw.FPDF_GetPageLabel(pdf.raw, index, None, 0)
        if size <= 2:
            labels.append(str(index + 1))
            continue
        buffer = ctypes.create_string_buffer(size)
        raw.FPDF_GetPageLabel(pdf.raw, index, buffer, size)
        labels.append(buffer.raw[: size - 2].decode("utf-16-le"))
    return labels if any(label != str(i + 1) for i, label in enumerate(labels)) else None


def page_count(path: Path) -> int:
    with open_pdf(path) as pdf:
        return len(pdf)


def page_lines(path: Path, start: int = 0, stop: int | None = None) -> list[list[str]]:
    """The non-empty lines of pages [start, stop) (0-based)."""
    with open_pdf(path) as pdf:
        return [_lines(_page_text(pdf, n)) for n in range(start, min(len(pdf), stop or len(pdf)))]


# PDFium (pypdfium2, Chromium's PDF engine) reads text about 20 times faster than pypdf: 1,221
# pages of LaTeX's source2e.pdf in 2.4 s against 50 s. It is not thread-safe, so every use in a
# process (the web app renders page pictures with it too) goes through this lock.
PDFIUM_LOCK = threading.RLock()


@contextmanager
def open_pdf(path: Path) -> Iterator[Any]:
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise ReadError("encrypted PDF" if "password" in str(exc).lower()
                            else f"not a readable PDF ({brief(exc)})") from exc
        try:
            yield pdf
        except pdfium.PdfiumError as exc:  # a damaged page; it must not end the run
            raise ReadError(f"not a readable PDF ({brief(exc)})") from exc
        finally:
            pdf.close()


def _page_text(pdf: Any, n: int) -> str:
    """PDFium's text of page n: in content order, which keeps a page's columns apart, with the
    cells of a table row on one line."""
    page = pdf[n]
    try:
        textpage = page.get_textpage()
        try:
            return textpage.get_text_range()
        finally:
            textpage.close()
    finally:
        page.close()


def _lines(text: str) -> list[str]:
    text = _CONTROL.sub("", text.translate(_LIGATURES))
    return [line for line in (" ".join(raw.split()) for raw in text.splitlines()) if line]


def _drop_running_lines(pages: list[list[str]], known: set[str] | None = None) -> list[list[str]]:
    """Drop running headers and footers: lines among the first or last two of a page whose shape
    (digits ignored, so "Page 3 of 10" is "Page 4 of 10") recurs there on >= 60% of the pages.

    `known`: shapes found in the earlier ranges of the same file, used here too and added to, so
    that a last range of one or two pages loses its furniture as well."""
    known = set() if known is None else known
    texted = [lines for lines in pages if lines]
    if len(texted) >= 3:  # with one or two pages a repeat is as likely content as furniture
        seen = Counter(key for lines in texted for key in {_shape(line) for line in _edges(lines)})
        known |= {key for key, count in seen.items() if count >= _RUNNING_SHARE * len(texted)}
    if not known:
        return pages
    return [_peel(lines, known) for lines in pages]


def _edges(lines: list[str]) -> list[str]:
    return lines[:_EDGE] + lines[_EDGE:][-_EDGE:]


def _peel(lines: list[str], running: set[str], edge: int = _EDGE) -> list[str]:
    """Strip running lines from the outside in: a line next to the body is furniture only when the
    line outside it is too, so a body line that merely looks alike (digits aside) stays."""
    top, bottom = 0, len(lines)
    while top < min(edge, bottom) and _shape(lines[top]) in running:
        top += 1
    while bottom > top and len(lines) - bottom < edge and _shape(lines[bottom - 1]) in running:
        bottom -= 1
    if top == bottom and edge > 1:  # a short page of look-alike lines keeps its body
        return _peel(lines, running, edge=1)
    return lines[top:bottom]


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line).casefold()
