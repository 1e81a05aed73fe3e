"""A document's structure, known at ingest without a model: its section tree, its printed page
labels, and a few representative passages per section for fast overviews.

The tree comes from the document itself: a PDF's bookmarks (`Reader.outline`), else the heading
paths its reader put on the records (HTML, Markdown and DOCX headings, or headings the PDF reader
detected in the text). `OutlineBuilder` watches the records and chunks stream past during ingest
and the last part of the document carries the result (`Document.structure`, JSON)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from docstack.index.base import Chunk
from docstack.text import sentence_spans

# Representative passages kept per section, and the chunks per section considered for them
# (the first ones: a section's opening states what it is about).
HIGHLIGHTS = 3
CANDIDATES = 48
PATH_SEPARATOR = " > "
# What a title's key leaves out: a leading "Chapter"/"Part"/"Appendix"/"Section", the numbers
# and letters that number it ("2.3.1", "A.2", "IV", "B"), and everything but letters and digits.
# Bookmarks and printed headings disagree on exactly these: the Octave manual's bookmark "Running
# Octave" is printed "1.1 Running Octave", gnuplot's "I Gnuplot" is printed "Part I" over "Gnuplot".
_TITLE_WORD = re.compile(r"^(?i:part|chapter|appendix|section)\s+")
_NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)*|[IVXLC]+)[.:]?\s+(?=\S)")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Section:
    title: str
    level: int  # 1 = top
    page: int | None  # the first page (1-based); None for formats without pages
    end_page: int | None = None
    path: str = ""  # the heading path, as chunks carry it in `section`
    fresh_page: bool = False  # starts at the top of its page (known from PDF bookmarks)


@dataclass
class Outline:
    """What a reader knows of a file's structure before it is chunked (PDF bookmarks, labels)."""

    sections: list[Section] = field(default_factory=list)
    page_labels: list[str] | None = None  # index 0 = page 1; None when the file defines none
    source: str = "bookmarks"


@dataclass
class Structure:
    """The structure stored with a document (JSON in the index)."""

    sections: list[Section]
    pages: int
    page_labels: list[str] | None = None
    source: str = "none"  # bookmarks | headings | markup | none
    highlights: dict[int, list[str]] = field(default_factory=dict)  # section index -> sentences

    def to_json(self) -> dict:
        return {"source": self.source, "pages": self.pages, "page_labels": self.page_labels,
                "sections": [asdict(s) for s in self.sections],
                "highlights": {str(k): v for k, v in self.highlights.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Structure:
        return cls([Section(**s) for s in data.get("sections", [])], data.get("pages", 0),
                   data.get("page_labels"), data.get("source", "none"),
                   {int(k): v for k, v in (data.get("highlights") or {}).items()})

    def label(self, page: int | None) -> str | None:
        """The printed label of a PDF page, when the document defines labels."""
        if page is None or not self.page_labels or not 1 <= page <= len(self.page_labels):
            return None
        return self.page_labels[page - 1] or None

    def section_at(self, page: int | None, path: str | None = None) -> int | None:
        """The index of the deepest section holding a chunk: by heading path where chunks carry
        one that the tree knows, else by page."""
        if path:
            for i in range(len(self.sections) - 1, -1, -1):
                if self.sections[i].path == path:
                    return i
        if page is None:
            return None
        best = None
        for i, s in enumerate(self.sections):
            if s.page is not None and s.page <= page <= (s.end_page or s.page):
                if best is None or s.level >= self.sections[best].level:
                    best = i
        return best


class OutlineBuilder:
    """Builds a document's `Structure` from its reader's outline (if any) and the records and
    chunks passing through ingest, in order."""

    def __init__(self, outline: Outline | None = None):
        self.outline = outline
        self.labels: dict[int, str] = {}
        self.paths: list[tuple[str, int | None]] = []  # heading paths in order of first sight
        self._seen: set[str] = set()
        self._candidates: list[tuple[str | None, int | None, str, np.ndarray]] = []
        self._per_key: dict[tuple, int] = {}

    def see_record(self, section: str | None, page: int | None, label: str | None = None) -> None:
        if label and page:
            self.labels[page] = label
        if section and section not in self._seen:
            self._seen.add(section)
            self.paths.append((section, page))

    def see_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        for chunk, vector in zip(chunks, vectors):
            key = (chunk.section, None if chunk.section else chunk.page)
            if self._per_key.get(key, 0) < CANDIDATES:
                self._per_key[key] = self._per_key.get(key, 0) + 1
                self._candidates.append((chunk.section, chunk.page, chunk.text, np.asarray(vector)))

    def build(self, pages: int) -> Structure:
        if self.outline and self.outline.sections:
            structure = Structure(_with_end_pages(self.outline.sections, pages), pages,
                                  self.outline.page_labels, self.outline.source)
        else:
            source = "headings" if any(p for _, p in self.paths) else "markup"
            structure = Structure(_with_end_pages(_from_paths(self.paths), pages), pages,
                                  self.outline.page_labels if self.outline else None,
                                  source if self.paths else "none")
        if structure.page_labels is None and self.labels:
            structure.page_labels = [self.labels.get(p, str(p)) for p in range(1, pages + 1)]
        structure.highlights = self._highlights(structure)
        return structure

    def _highlights(self, structure: Structure) -> dict[int, list[str]]:
        """Per section, the first sentence of the chunks nearest its centroid: passages that
        say what the section is about, chosen with the embeddings ingest computed anyway."""
        groups: dict[int, list[tuple[str, np.ndarray]]] = {}
        for section, page, text, vector in self._candidates:
            index = structure.section_at(page, section)
            if index is not None:
                groups.setdefault(index, []).append((text, vector))
        highlights = {}
        for index, members in groups.items():
            vectors = np.vstack([v for _, v in members])
            centre = vectors.mean(axis=0)
            order = np.argsort(-(vectors @ centre))[:HIGHLIGHTS]
            highlights[index] = [_first_sentence(members[i][0]) for i in sorted(order)]
        return highlights


def title_key(title: str) -> str:
    """A section title as compared with another (a bookmark's with a line of its page, a detected
    heading's with a bookmark's): numbering, spacing, punctuation and case ignored."""
    text = _TITLE_WORD.sub("", " ".join(title.split()))
    while (bare := _NUMBERING.sub("", text, count=1)) != text:
        text = bare
    return _NOT_WORD.sub("", text.casefold())


def _from_paths(paths: list[tuple[str, int | None]]) -> list[Section]:
    """A section tree from heading paths in document order ("A > B" adds A, then B under it)."""
    sections: list[Section] = []
    known: set[str] = set()
    for path, page in paths:
        parts = path.split(PATH_SEPARATOR)
        for depth in range(1, len(parts) + 1):
            prefix = PATH_SEPARATOR.join(parts[:depth])
            if prefix not in known:
                known.add(prefix)
                sections.append(Section(parts[depth - 1], depth, page, None, prefix))
    return sections


def _with_end_pages(sections: list[Section], pages: int) -> list[Section]:
    """Each section ends where the next section at its level or above begins, or at the
    document's last page. A chapter starts on a fresh page, so the one before ends a page
    earlier (as does any section a bookmark places at the top of its page); a lower section
    often starts part-way down a page, which then belongs to both."""
    ended = []
    for i, s in enumerate(sections):
        if s.page is None:
            ended.append(s)
            continue
        end = pages
        for later in sections[i + 1:]:
            if later.level <= s.level and later.page is not None:
                fresh = later.fresh_page or later.level == 1
                end = max(s.page, later.page - 1 if fresh else later.page)
                break
        ended.append(dataclasses.replace(s, end_page=end, path=s.path or s.title))
    return ended


def _first_sentence(text: str, limit: int = 300) -> str:
    """The chunk's first sentence that reads as one: not a heading line, not a fragment left by
    the chunk overlap (a capital letter or digit first, six words or more)."""
    spans = sentence_spans(text, 0, len(text), lines=True)
    candidates = [" ".join(text[a:b].split()) for a, b in spans] or [" ".join(text.split())]
    good = [c for c in candidates if not c.startswith("#") and len(c.split()) >= 6 and c[:1].isupper()]
    sentence = (good or candidates)[0]
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0] + "…"
