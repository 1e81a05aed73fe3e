"""PDF: the text layer through PDFium, a record per page and section (1-based page numbers, the
heading path and the printed page label), running headers and footers dropped, table rows kept on
one line. A large PDF is planned as ranges of pages that workers parse in parallel while earlier
ranges are chunked and embedded.

Workers give each line the little heading detection needs (font size, bold, height on the page);
the main process reads the bookmarks and page labels, and cuts pages where sections begin
(`pdf_sections`), so that no chunk straddles two sections."""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

from docstack.console import DocstackError
from docstack.ingest.readers.base import Part, ReadError, Record, Warn, brief
from docstack.ingest.readers.pdf_sections import NUMBERING, Bookmarks, Declared, Headings, Line, Mark
from docstack.ingest.structure import PATH_SEPARATOR, Outline, Section

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\xad\ufffe]")  # NULs from unmapped glyphs, soft hyphens
# (PDFium writes U+FFFE where a word is hyphenated across a line break: "ses\ufffesion" is "session")
_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")  # where str.splitlines splits, _CONTROL aside
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

    def parse(self, part: Part) -> list[list[Line]]:
        """The non-empty lines of each page of the part, with their type."""
        return page_lines(part.path, part.start, part.stop)

    def records(self, path: Path, parsed: Iterable[list[list[Line]]], warn: Warn) -> Iterator[Record]:
        """Records page by page, range by range, a page cut where a section begins; the running
        headers found in earlier ranges are dropped from later ones too, so a last range of one
        or two pages loses them as well."""
        declared = _declared(path) or Declared([], None)
        sections = Bookmarks(declared.marks) if declared.marks else Headings()
        running: set[str] = set()
        first_page = 1
        blank = total = 0
        for pages in parsed:
            blank += sum(1 for lines in pages if not lines)
            total += len(pages)
            pages = _drop_running_lines(pages, running)
            for number, section, lines in sections.pieces(pages, first_page):
                yield Record("\n".join(line.text for line in lines), number, section,
                             declared.label(number))
            first_page += len(pages)
        if total and blank == total:
            warn(f"{SCANNED}")
        elif blank:
            log.info("%s: %d of %d pages have no text", path, blank, total)

    def pages(self, parts: list[Part]) -> int | None:
        return parts[-1].stop if parts[-1].stop is not None else None

    def outline(self, path: Path) -> Outline | None:
        """The PDF's bookmarks as a section tree, and its printed page labels: 517 bookmarks and
        1,158 labels of the Octave manual in 0.12 s (on two busy cores)."""
        declared = _declared(path)
        return Outline([m.section for m in declared.marks], declared.labels) if declared else None


def _declared(path: Path) -> Declared | None:
    """Bookmarks and page labels, read in the main process, by `outline` and again by `records`
    (0.12 s for the Octave manual, against the minutes its ingest takes: not worth keeping them
    between the two calls)."""
    try:
        with open_pdf(path) as pdf:
            return Declared(_bookmarks(pdf), _page_labels(pdf))
    except (DocstackError, OSError):
        return None  # parsing it reports the error


def _bookmarks(pdf: Any) -> list[Mark]:
    """Bookmarks in document order; a section that starts at the top of its page (as chapters
    do) does not share that page with the section before it (see structure._with_end_pages)."""
    marks, paths = [], []
    for mark in pdf.get_toc(max_depth=16):
        title = " ".join((mark.get_title() or "").split())
        dest = mark.get_dest()
        index = dest.get_index() if dest is not None else None  # 0.1 ms each: asked once
        if not title or index is None:
            continue
        level = mark.level + 1
        paths = paths[: level - 1] + [title]
        top, fresh = _top(pdf, dest, index)
        marks.append(Mark(Section(title, level, index + 1, None, PATH_SEPARATOR.join(paths), fresh_page=fresh),
                          top))
    return marks


def _top(pdf: Any, dest: Any, index: int) -> tuple[float | None, bool]:
    """Where the destination's view begins (points from the bottom of the page, None for a
    whole-page view) and whether that is the top of its page: a whole-page view (Fit), or a
    view whose top edge is in the page's top 15%. The page's size is read without loading the
    page: the Octave manual's 517 bookmarks take 0.1 s, 0.5 s with each page loaded."""
    try:
        mode, view = dest.get_view()
        _, height = pdf.get_page_size(index)
    except Exception:  # a destination without a view
        return None, False
    if mode in (_FIT, _FITB):
        return None, True
    top = view[1] if mode == _XYZ and len(view) > 1 else view[0] if mode in (_FITH, _FITBH) and view else None
    if not top or top <= 0:  # PDFium reads a null top ("keep the viewer's") as 0
        return None, False
    return float(top), top >= 0.85 * height


def _page_labels(pdf: Any) -> list[str] | None:
    """The printed label of each page (a manual's page "1" is often PDF page 17), or None when
    the PDF defines no labels."""
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


def page_lines(path: Path, start: int = 0, stop: int | None = None) -> list[list[Line]]:
    """The non-empty lines of pages [start, stop) (0-based), with their type."""
    with open_pdf(path) as pdf:
        return [_page_lines(pdf, n) for n in range(start, min(len(pdf), stop or len(pdf)))]


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


def _page_lines(pdf: Any, n: int) -> list[Line]:
    """PDFium's text of page n, in lines: in content order, which keeps a page's columns apart,
    with the cells of a table row on one line."""
    page = pdf[n]
    try:
        textpage = page.get_textpage()
        try:
            return _typed(textpage, textpage.get_text_range())
        finally:
            textpage.close()
    finally:
        page.close()


# Font sizes, weights and positions are asked of a few characters per line only (its first,
# middle and last, and around the spaces of a line that could be a heading): the Octave manual's
# 47,000 lines are typed in about 0.3 s on top of the 1.15 s their text takes.
_HEADING_SIZE = 1.15  # a line set this much larger than the page's usual size may be a heading
_HEADING_WORDS = 16
_RUN_IN_WORDS = 6
_RUN_IN_GAP = 0.8  # ems
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_BOLD_NAME = re.compile(r"bold|black|heavy|demi|[-,]B[dI]?$|BX\d", re.IGNORECASE)


def _typed(textpage: Any, text: str) -> list[Line]:
    """The non-empty lines of a page's text, with their font size, boldness and height."""
    typist = _Typist(textpage, text)
    spans, start = [], 0
    for match, clean in zip(chain(_BREAK.finditer(text), [None]), _cleaned(text), strict=True):
        end = match.start() if match else len(text)
        if clean:
            segment = text[start:end]
            spans.append((clean, start + len(segment) - len(segment.lstrip()), start + len(segment.rstrip()) - 1))
        start = match.end() if match else end
    lines = [typist.line(*span) for span in spans]
    usual = _usual_size(lines)
    return [typist.spread(line, span) if _maybe_heading(line, usual) else line for line, span in zip(lines, spans)]


def _cleaned(text: str) -> list[str]:
    """Each line of a page's text, ligatures spelled out, control characters and hyphenation marks
    dropped, spaces collapsed; "" for a blank line. The whole text is cleaned at once and line
    breaks are untouched, so these lines and the text's own (whose positions PDFium knows) pair up."""
    return [" ".join(line.split()) for line in _BREAK.split(_CONTROL.sub("", text.translate(_LIGATURES)))]


class _Typist:
    """Asks PDFium the type of a page's lines, by their characters' positions in its text."""

    def __init__(self, textpage: Any, text: str):
        from pypdfium2 import raw

        self.raw, self.handle, self.text = raw, textpage.raw, text
        # PDFium's text and its list of characters agree, but for the rare character it inserts
        # or leaves out: then each position is looked up, in UTF-16 units, where a character
        # beyond the BMP (a math italic x: U+1D465) counts two.
        self.astral = [m.start() for m in _ASTRAL.finditer(text)]
        self.same = not self.astral and len(text) == raw.FPDFText_CountChars(self.handle)
        self.doubles = [ctypes.c_double() for _ in range(4)]
        self.name = ctypes.create_string_buffer(96)
        self.size_of, self.weight_of = raw.FPDFText_GetFontSize, raw.FPDFText_GetFontWeight

    def char(self, position: int) -> int:
        if self.same:
            return position
        return self.raw.FPDFText_GetCharIndexFromTextIndex(self.handle, position + bisect_left(self.astral, position))

    def line(self, clean: str, first: int, last: int) -> Line:
        """Size: the smaller of the first and last characters' (a larger symbol inside a body line
        does not make it a heading); bold: its first, middle and last characters all are."""
        handle, size_of = self.handle, self.size_of
        head, tail = self.char(first), self.char(last)
        size = min(size_of(handle, head), size_of(handle, tail))
        lead = self._bold(head)
        middle = (first + last) // 2
        middle += self.text[middle].isspace()  # a space has no font
        bold = lead and self._bold(tail) and self._bold(self.char(middle))
        run_in = self._run_in(first, last, size) if lead and not bold else 0
        x, y = self.doubles[0], self.doubles[1]
        self.raw.FPDFText_GetCharOrigin(handle, head, x, y)
        return Line(clean, round(size, 1), bold, lead, round(y.value, 1), run_in=run_in)

    def _run_in(self, first: int, last: int, size: float) -> int:
        """The words of a heading run into its paragraph at the start of the line: bold words,
        then a space of an em or so (LaTeX's \\paragraph: 1.05 em; a word in bold inside the text,
        "Gnuplot is a portable...", is followed by an ordinary space, 0.3-0.5 em)."""
        position = first
        for words in range(1, _RUN_IN_WORDS + 1):
            space = self.text.find(" ", position, last)
            if space < 0:
                return 0
            after = space + 1
            while after < last and self.text[after].isspace():
                after += 1
            if not self._bold(self.char(after)):
                return words if self._gap(space - 1, after) >= _RUN_IN_GAP * size else 0
            position = after
        return 0

    def _gap(self, before: int, after: int) -> float:
        """The horizontal space between two characters (text positions), points."""
        left, right, bottom, top = self.doubles
        self.raw.FPDFText_GetCharBox(self.handle, self.char(before), left, right, bottom, top)
        end = right.value
        self.raw.FPDFText_GetCharBox(self.handle, self.char(after), left, right, bottom, top)
        return left.value - end

    def _bold(self, char: int) -> bool:
        """By the font's weight (Computer Modern bold: 545-570, regular: 345), else, where the
        font does not say (the standard 14 fonts), by its name."""
        weight = self.weight_of(self.handle, char)
        if weight > 0:
            return weight >= 500
        self.raw.FPDFText_GetFontInfo(self.handle, char, self.name, len(self.name), None)
        return bool(_BOLD_NAME.search(self.name.value.decode("latin-1")))

    def spread(self, line: Line, span: tuple[str, int, int]) -> Line:
        """The line with the widest space between two of its words, in ems: table cells are set
        1.3 em and more apart, a heading's words about 0.5 em (the gap after its number aside,
        a quad in LaTeX)."""
        _, first, last = span
        skip = bool(NUMBERING.match(line.text))
        widest = 0.0
        for position in range(first + 1, last):
            if not self.text[position].isspace() or self.text[position - 1].isspace():
                continue
            if skip:
                skip = False
                continue
            after = position + 1
            while after < last and self.text[after].isspace():
                after += 1
            widest = max(widest, self._gap(position - 1, after))
        return line._replace(spread=round(widest / line.size, 2)) if line.size else line


def _usual_size(lines: list[Line]) -> float:
    """The font size most of the page's text is set in."""
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _maybe_heading(line: Line, usual: float) -> bool:
    return (line.bold or line.size >= _HEADING_SIZE * usual or line.text[:1].isdigit()) \
        and len(line.text.split()) <= _HEADING_WORDS


def _drop_running_lines(pages: list[list[Line]], known: set[str] | None = None) -> list[list[Line]]:
    """Drop running headers and footers: lines among the first or last two of a page whose shape
    (digits ignored, so "Page 3 of 10" is "Page 4 of 10") recurs there on >= 60% of the pages.

    `known`: shapes found in the earlier ranges of the same file, used here too and added to, so
    that a last range of one or two pages loses its furniture as well."""
    known = set() if known is None else known
    texted = [lines for lines in pages if lines]
    if len(texted) >= 3:  # with one or two pages a repeat is as likely content as furniture
        seen = Counter(key for lines in texted for key in {_shape(line.text) for line in _edges(lines)})
        known |= {key for key, count in seen.items() if count >= _RUNNING_SHARE * len(texted)}
    if not known:
        return pages
    return [_peel(lines, known) for lines in pages]


def _edges(lines: list[Line]) -> list[Line]:
    return lines[:_EDGE] + lines[_EDGE:][-_EDGE:]


def _peel(lines: list[Line], running: set[str], edge: int = _EDGE) -> list[Line]:
    """Strip running lines from the outside in: a line next to the body is furniture only when the
    line outside it is too, so a body line that merely looks alike (digits aside) stays."""
    top, bottom = 0, len(lines)
    while top < min(edge, bottom) and _shape(lines[top].text) in running:
        top += 1
    while bottom > top and len(lines) - bottom < edge and _shape(lines[bottom - 1].text) in running:
        bottom -= 1
    if top == bottom and edge > 1:  # a short page of look-alike lines keeps its body
        return _peel(lines, running, edge=1)
    return lines[top:bottom]


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line).casefold()
