"""HTML: the main text only (no scripts, navigation, headers or footers), a record per section with
its heading path, table rows as `a | b | c`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docstack.ingest.readers.base import ReadError, Record, Sections, WholeFileReader, brief, clean, quiet

_HTML_CHROME = {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template",
                "iframe", "object", "canvas", "button", "dialog"}
_ARIA_CHROME = {"navigation", "banner", "contentinfo", "complementary", "search"}
_HTML_BLOCKS = {"address", "article", "aside", "blockquote", "body", "center", "dd", "details", "div", "dl", "dt",
                "fieldset", "figcaption", "figure", "hr", "html", "li", "main", "ol", "p", "section", "summary",
                "ul", "caption", "table", "thead", "tbody", "tfoot", "tr", "td", "th"}
_HTML_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class HtmlReader(WholeFileReader):
    suffixes = (".html", ".htm", ".xhtml")

    def read(self, path: Path) -> list[Record]:
        return read_html(path)


def read_html(path: Path) -> list[Record]:
    """One record per section; `section` is the path of h1..h6 headings, the <title> standing in
    for a missing h1. Site chrome (navigation, header, footer, scripts, hidden parts) is left out."""
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    try:
        with quiet("bs4"):
            soup = BeautifulSoup(data, "lxml")  # given bytes, bs4 detects the charset itself
            for element in soup.find_all(_is_chrome):
                if not element.decomposed:
                    element.decompose()
            return _html_sections(soup)
    except Exception as exc:  # e.g. RecursionError on absurdly deep nesting; one file must not end the run
        raise ReadError(f"not a readable HTML file ({brief(exc)})") from exc


def _html_sections(soup: Any) -> list[Record]:
    root = _content_root(soup)
    sections = Sections()
    title = clean(soup.title.get_text(" ")) if soup.title else ""
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


def _walk(element: Any, sections: Sections, inline: list[str]) -> None:
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
            if heading := clean(child.get_text(" ")).rstrip("¶").strip():
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


def _end_paragraph(sections: Sections, inline: list[str]) -> None:
    lines = (" ".join(line.split()) for line in "".join(inline).split("\n"))
    sections.add("\n".join(line for line in lines if line))
    inline.clear()


def _is_layout_table(table: Any) -> bool:
    """Old pages lay out whole pages with tables; read those as blocks, not as rows."""
    return str(table.get("role") or "").lower() == "presentation" or table.find(["table", *_HTML_HEADINGS]) is not None


def _html_table(table: Any, sections: Sections) -> None:
    if table.caption:
        sections.add(clean(table.caption.get_text(" ")))
    rows = []
    for tr in table.find_all("tr"):
        cells = [clean(cell.get_text(" ")) for cell in tr.find_all(["td", "th"], recursive=False)]
        if any(cells):
            rows.append(" | ".join(cells))
    sections.add("\n".join(rows))
