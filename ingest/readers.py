"""Readers turn one file into records: a page of a PDF, a section of a Markdown, HTML or DOCX file,
a text file.

Each record keeps where its text came from (1-based page, heading path) so that every chunk cut
from it can cite its place. Paragraphs inside a record are separated by blank lines, which is where
the chunker prefers to cut."""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docstack.console import DocstackError

log = logging.getLogger(__name__)
_QUIET_LOCK = threading.Lock()  # _quiet changes process-wide logging and warning state


class ReadError(DocstackError):
    """A file that cannot be read; the message names the reason in one line."""


@dataclass(frozen=True)
class Record:
    text: str
    page: int | None = None
    section: str | None = None


def _brief(exc: BaseException) -> str:
    """An exception as one short line, for a ReadError reason."""
    message = " ".join(str(exc).split())[:120]
    return f"{exc.__class__.__name__}: {message}" if message else exc.__class__.__name__


@contextmanager
def _quiet(library: str) -> Iterator[None]:
    """Parsers report recoverable damage through logging and warnings, which end up on stderr.
    docstack reports what matters itself, so their notes go to our log at debug level only."""
    logger = logging.getLogger(library)
    handler = _ToDebug()
    with _QUIET_LOCK:
        propagate = logger.propagate
        logger.addHandler(handler)
        logger.propagate = False
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
            for warning in caught:
                log.debug("%s: %s", library, warning.message)
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate


class _ToDebug(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log.debug("%s: %s", record.name, record.getMessage())


@dataclass
class _Sections:
    """Collects paragraphs under a heading path; one record per section that has text."""

    records: list[Record] = field(default_factory=list)
    trail: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    head: str | None = None

    def heading(self, level: int, title: str) -> None:
        self.flush()
        self.trail = [(lvl, t) for lvl, t in self.trail if lvl < level] + [(level, title)]
        self.head = title  # the heading's words belong to its section's text, as in Markdown

    def add(self, text: str) -> None:
        if text.strip():
            self.blocks.append(text.strip("\n"))  # not spaces: they indent the first line of a <pre>

    def flush(self) -> None:
        # A heading with nothing under it makes no record: it would be a chunk without content.
        if self.blocks:
            text = "\n\n".join([self.head, *self.blocks] if self.head else self.blocks)
            self.records.append(Record(text=text, section=self.section))
        self.blocks, self.head = [], None

    @property
    def section(self) -> str | None:
        return " > ".join(t for _, t in self.trail) or None


# ---------------------------------------------------------------------------------------- PDF

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\xad]")  # NULs from unmapped glyphs, soft hyphens
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"})
_EDGE = 2  # lines at the top and at the bottom of a page that may be a running header or footer
_RUNNING_SHARE = 0.6


def read_pdf(path: Path) -> list[Record]:
    return pdf_records(path, pdf_page_lines(path))


def pdf_records(path: Path, pages: list[list[str]]) -> list[Record]:
    """Records from the lines of every page of a PDF."""
    blank = sum(1 for lines in pages if not lines)
    if pages and blank == len(pages):
        log.warning("%s: no text layer (scanned?)", path)
        return []
    if blank:
        log.info("%s: %d of %d pages have no text", path, blank, len(pages))
    return pdf_range_records(pages, first_page=1)


def pdf_range_records(pages: list[list[str]], first_page: int, running: set[str] | None = None) -> list[Record]:
    """Records from consecutive pages, less the running headers and footers found among them
    (and in the earlier ranges, whose `running` shapes this adds to).

    A large PDF is read in ranges of pages so that chunking and embedding start while later
    ranges are still being parsed; 50 pages hold enough repeats to find their furniture."""
    pages = _drop_running_lines(pages, running)
    return [Record(text="\n".join(lines), page=number)
            for number, lines in enumerate(pages, start=first_page) if lines]


def pdf_page_count(path: Path) -> int:
    with open_pdf(path) as pdf:
        return len(pdf)


def pdf_page_lines(path: Path, start: int = 0, stop: int | None = None) -> list[list[str]]:
    """The non-empty lines of pages [start, stop) (0-based); parallel workers each read a range."""
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
                            else f"not a readable PDF ({_brief(exc)})") from exc
        try:
            yield pdf
        except pdfium.PdfiumError as exc:  # a damaged page; it must not end the run
            raise ReadError(f"not a readable PDF ({_brief(exc)})") from exc
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


# --------------------------------------------------------------------------------------- HTML

_HTML_CHROME = {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template",
                "iframe", "object", "canvas", "button", "dialog"}
_ARIA_CHROME = {"navigation", "banner", "contentinfo", "complementary", "search"}
_HTML_BLOCKS = {"address", "article", "aside", "blockquote", "body", "center", "dd", "details", "div", "dl", "dt",
                "fieldset", "figcaption", "figure", "hr", "html", "li", "main", "ol", "p", "section", "summary",
                "ul", "caption", "table", "thead", "tbody", "tfoot", "tr", "td", "th"}
_HTML_HEADINGS = {f"h{n}": n for n in range(1, 7)}


def read_html(path: Path) -> list[Record]:
    """One record per section; `section` is the path of h1..h6 headings, the <title> standing in
    for a missing h1. Site chrome (navigation, header, footer, scripts, hidden parts) is left out."""
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    try:
        with _quiet("bs4"):
            soup = BeautifulSoup(data, "lxml")  # given bytes, bs4 detects the charset itself
            for element in soup.find_all(_is_chrome):
                if not element.decomposed:
                    element.decompose()
            return _html_sections(soup)
    except Exception as exc:  # e.g. RecursionError on absurdly deep nesting; one file must not end the run
        raise ReadError(f"not a readable HTML file ({_brief(exc)})") from exc


def _html_sections(soup: Any) -> list[Record]:
    root = _content_root(soup)
    sections = _Sections()
    title = _clean(soup.title.get_text(" ")) if soup.title else ""
    if title and root.find("h1") is None:
        sections.trail = [(1, title)]
    inline: list[str] = []
    _walk(root, sections, inline)
    _end_paragraph(sections, inline)
    sections.flush()
    return sections.records


def _is_chrome(tag: Any) -> bool:
    if tag.name == "header" and tag.find_parent(["article", "main"]):
        return False  # inside an article, <header> holds its title and byline, not site chrome
    if tag.name in _HTML_CHROME or tag.has_attr("hidden"):
        return True
    role = str(tag.get("role") or "").strip().lower()
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return (role in _ARIA_CHROME or str(tag.get("aria-hidden") or "").lower() == "true"
            or "display:none" in style)


def _content_root(soup: Any) -> Any:
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    if main is not None:
        return main
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles[0]
    return soup.body or soup  # several articles (an index page): keep them all


def _walk(element: Any, sections: _Sections, inline: list[str]) -> None:
    """Adds the blocks under `element` in document order; `inline` gathers the current paragraph."""
    from bs4 import NavigableString

    for child in element.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # not a comment, doctype, CDATA or the like
                inline.append(re.sub(r"\s+", " ", child))  # keep edge spaces: "a <b>b</b>" is two words
        elif child.name == "br":
            inline.append("\n")
        elif child.name in _HTML_HEADINGS:
            _end_paragraph(sections, inline)
            if heading := _clean(child.get_text(" ")).rstrip("¶").strip():
                sections.heading(_HTML_HEADINGS[child.name], heading)
        elif child.name == "table" and not _is_layout_table(child):
            _end_paragraph(sections, inline)
            _html_table(child, sections)
        elif child.name == "pre":
            _end_paragraph(sections, inline)
            sections.add(child.get_text().strip("\n"))
        elif child.name in _HTML_BLOCKS:
            _end_paragraph(sections, inline)
            _walk(child, sections, inline)
            _end_paragraph(sections, inline)
        else:
            _walk(child, sections, inline)  # inline markup: part of the current paragraph


def _end_paragraph(sections: _Sections, inline: list[str]) -> None:
    lines = (" ".join(line.split()) for line in "".join(inline).split("\n"))
    sections.add("\n".join(line for line in lines if line))
    inline.clear()


def _is_layout_table(table: Any) -> bool:
    """Old pages lay out whole pages with tables; read those as blocks, not as rows."""
    return str(table.get("role") or "").lower() == "presentation" or table.find(["table", *_HTML_HEADINGS]) is not None


def _html_table(table: Any, sections: _Sections) -> None:
    if table.caption:
        sections.add(_clean(table.caption.get_text(" ")))
    rows = []
    for tr in table.find_all("tr"):
        cells = [_clean(cell.get_text(" ")) for cell in tr.find_all(["td", "th"], recursive=False)]
        if any(cells):
            rows.append(" | ".join(cells))
    sections.add("\n".join(rows))


def _clean(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------------------- DOCX

_DOCX_HEADING = re.compile(r"heading ([1-9])")


def read_docx(path: Path) -> list[Record]:
    """One record per section; headings (styles "Title", "Heading 1".."Heading 9") make the path.
    Tables come in document order, a row per line with cells joined by " | "."""
    import docx
    from docx.table import Table

    try:
        with _quiet("docx"):
            document = docx.Document(str(path))
            sections = _Sections()
            for block in document.iter_inner_content():
                if isinstance(block, Table):
                    sections.add(_docx_table(block))
                else:
                    _docx_paragraph(block, sections)
            sections.flush()
    except Exception as exc:  # not a zip, a missing part, broken XML: python-docx fails in many ways
        raise ReadError(f"not a readable DOCX ({_brief(exc)})") from exc
    return sections.records


def _docx_paragraph(paragraph: Any, sections: _Sections) -> None:
    text = paragraph.text.strip()
    if not text:
        return
    level = _docx_heading_level(paragraph)
    if level is None:
        sections.add(text)
    else:
        sections.heading(level, _clean(text))


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
                cells.append(_clean(cell.text))
            last = cell._tc
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# ---------------------------------------------------------------------------- Markdown, text

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
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".docx": read_docx,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".text": read_text,
    ".rst": read_text,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in READERS


def read_document(path: Path) -> list[Record]:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ReadError(f"unsupported file type '{path.suffix or path.name}'")
    return reader(path)
