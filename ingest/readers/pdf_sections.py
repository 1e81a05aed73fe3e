"""Where a PDF's sections begin on its pages, so that the PDF reader cuts a page there: every
record, and every chunk cut from it, then lies in one section and carries its heading path.

With bookmarks, each one is looked for among the lines of its page (`Bookmarks`); a title not
found there starts its section at the top of the page. Without bookmarks, headings are found in
the text (`Headings`): numbered ones ("2.3.1 Title", "Chapter 4 ...", "Appendix A ...") and
typographic ones (set clearly larger than the body text, or bold), with guards against the lines
that look like headings and are not: table rows, numbered list items, figure captions, running
headers, the lines of a table of contents. Both run in the main process over the pages in order,
a parsed range at a time; a `Line` is what a worker sends back for each line of a page."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from docstack.ingest.structure import PATH_SEPARATOR, Section, title_key


class Line(NamedTuple):
    text: str
    size: float = 0.0  # font size, points; 0 where unknown
    bold: bool = False  # the whole line (its first, middle and last characters) is bold
    lead: bool = False  # its first character is bold: a heading run into its paragraph may start it
    y: float = 0.0  # its baseline, points from the bottom of the page
    spread: float = 0.0  # the widest space between two of its words, in ems; measured on lines that may be headings
    run_in: int = 0  # the words of a heading run into the paragraph that the line starts ("Png If gnuplot...")


@dataclass(frozen=True)
class Mark:
    """A bookmark: its section, and where its destination's view begins (points from the bottom
    of the page), a hint to where on the page the section starts."""

    section: Section
    top: float | None = None


@dataclass(frozen=True)
class Declared:
    """What a PDF declares of its structure: bookmarks, and printed page labels (index 0 = page 1)."""

    marks: list[Mark]
    labels: list[str] | None

    def label(self, page: int) -> str | None:
        return self.labels[page - 1] if self.labels and 0 < page <= len(self.labels) else None


Piece = tuple[int, str | None, list[Line]]  # page, heading path, the lines of one section on it

# "Chapter 4", "Part II", "Appendix A" (a word and a label), or "2", "2.3.1", "A.2", "1." (a number).
NUMBERING = re.compile(r"(?:(?P<word>(?i:part|chapter|appendix|section))\s+(?P<label>\d+|[IVXLC]+|[A-Z])\b"
                       r"|(?P<number>\d+(?:\.\d+)*|[A-Z](?:\.\d+)+)(?P<dot>\.(?!\d))?)[.:]?(?:\s+|$)")
_LEADERS = re.compile(r"(?:\.\s?){4,}|…|_{4,}")  # a table of contents' dotted leaders
_CAPTION = re.compile(r"(?i:fig(?:ure|\.)?|table|listing|plate|exhibit|chart)\s+[\dA-Z]+(?:[.\-]\d+)*\s*[.:]")
_PAGE_AT_END = re.compile(r"\s\d+$")  # "1.2 Simple Examples 6": a contents line without leaders
_NOT_WORD = re.compile(r"[\W_]+")
_CODE = re.compile(r"[{}=|]")  # code: key=value, {arguments}, choice|choice
_FOLIO = re.compile(r"^(?:\d+|[ivxlc]+)\b|\b(?:\d+|[ivxlc]+)$")  # a printed page number first or last
_FIGURE = re.compile(r"[-+±(]?[\d.,:/%x×]+\)?")
_LARGER = 1.15  # a line set this much larger than the body text is a heading (texinfo and LaTeX: 1.2-1.9)
_TABLE_SPREAD = 1.2  # words this many ems apart are table cells (cells: 1.3 em and more; words: 0.3-0.6)
_MAX_WORDS = 14
_PLAIN_WORDS = 10  # a numbered heading in body type is short


class BodySize:
    """The font size of the body text a heading must be clearly larger than: the size most of
    the document's text so far is set in, or, on a page with text enough to tell, the page's own
    where that is larger. The document's alone is fooled by a page of larger print; a range's or
    a page's alone by the small print of an index (the Octave manual's last 50 pages) or of a
    page of code, where every line of normal text would become a heading."""

    PAGE_CHARS = 600

    def __init__(self) -> None:
        self.sizes: Counter[float] = Counter()

    def add(self, pages: list[list[Line]]) -> None:
        for lines in pages:
            for line in lines:
                self.sizes[line.size] += len(line.text)

    def on(self, lines: list[Line]) -> float:
        document = self.sizes.most_common(1)[0][0] if self.sizes else 0.0
        page: Counter[float] = Counter()
        for line in lines:
            page[line.size] += len(line.text)
        if sum(page.values()) < self.PAGE_CHARS:
            return document
        return max(document, page.most_common(1)[0][0])


class Bookmarks:
    """Cuts pages where bookmarked sections start, each bookmark's title looked for among the
    lines of its page (numbering, spacing and case aside, over up to three lines)."""

    def __init__(self, marks: list[Mark]):
        self.marks: dict[int, list[Mark]] = defaultdict(list)
        for mark in marks:
            self.marks[mark.section.page or 0].append(mark)
        self.path: str | None = None  # the section the last page ended in
        self.body = BodySize()

    def pieces(self, pages: list[list[Line]], first_page: int) -> Iterator[Piece]:
        self.body.add(pages)
        for number, lines in enumerate(pages, start=first_page):
            marks = self.marks.get(number)
            cuts = self._cuts(marks, lines, self.body.on(lines)) if marks else []
            yield from split(number, lines, self.path, cuts)
            self.path = cuts[-1][1] if cuts else self.path

    def _cuts(self, marks: list[Mark], lines: list[Line], body: float) -> list[tuple[int, str]]:
        """Where each of the page's bookmarks starts, in their order: a title not found starts
        where the bookmark before it did (the top of the page for the first)."""
        cuts, cursor = [], 0
        keys = [title_key(line.text) for line in lines] if marks else []
        for mark in marks:
            found = self._locate(mark, lines, keys, cursor, body)
            cursor = cursor if found is None else found
            cuts.append((cursor, mark.section.path))
        return cuts

    @staticmethod
    def _locate(mark: Mark, lines: list[Line], keys: list[str], cursor: int, body: float) -> int | None:
        key = title_key(mark.section.title)
        if not key:
            return None
        found = [i for i in range(cursor, len(lines)) if _spells(lines, keys, i, key)]
        # A heading run into its paragraph ("Png If gnuplot was configured...", gnuplot's
        # \paragraph) starts its line, in bold.
        found = found or [i for i in range(cursor, len(lines)) if lines[i].lead and keys[i].startswith(key)]
        if not found:
            return None
        # The body may repeat a title as a line of its own ("structures."), and a page number
        # may stand above it: a line set as a heading is preferred, then the one nearest below
        # the bookmark's destination.
        found = [i for i in found if _styled(lines[i], body)] or found
        if mark.top is None or len(found) == 1:
            return found[0]
        return min(found, key=lambda i: _below(lines[i].y, mark.top))


def split(number: int, lines: list[Line], path: str | None, cuts: list[tuple[int, str | None]]) -> Iterator[Piece]:
    """A page's pieces: from each cut to the next, under the cut's heading path; before the
    first, under `path`, the section the page began in. A page number or running header alone
    above the first cut goes with the section below it rather than making a record (and a chunk)
    of a few characters: 117 of them in the Octave manual, whose running headers alternate
    between odd and even pages and so stay."""
    start = 0
    for index, section in cuts:
        if index > start and not (start == 0 and _furniture(lines[:index])):
            yield number, path, lines[start:index]
            start = index
        path = section
    if start < len(lines):
        yield number, path, lines[start:]


def _furniture(lines: list[Line]) -> bool:
    return len(lines) == 1 and len(lines[0].text.split()) <= 8 and bool(_FOLIO.search(lines[0].text))


def _spells(lines: list[Line], keys: list[str], i: int, key: str) -> bool:
    """Whether the title with this key is printed from line i on, over at most three lines (the
    first may be a label alone: "Part I" over "Gnuplot")."""
    if keys[i] == key:
        return True
    if not (key.startswith(keys[i]) or _label_only(lines[i].text)):
        return False
    text = lines[i].text
    for j in range(i + 1, min(i + 3, len(lines))):
        text = f"{text} {lines[j].text}"
        joined = title_key(text)
        if joined == key:
            return True
        if not key.startswith(joined):
            return False
    return False


def _below(y: float, top: float) -> float:
    """How far a baseline lies below a destination's top; a line above it comes last."""
    return top - y if y <= top + 2 else 1000 + y - top


def _styled(line: Line, body: float) -> bool:
    return (body > 0 and line.size >= _LARGER * body) or (line.bold and line.size >= 0.95 * body)


def _label_only(text: str) -> bool:
    match = NUMBERING.match(text)
    return bool(match) and match.end() == len(text)


@dataclass(frozen=True)
class _Heading:
    index: int  # its first line on the page
    title: str
    kind: tuple[float, int]  # its font size, and 1 if set on a line of its own, 0 if run into its paragraph
    depth: int  # the depth of its numbering ("2.3.1": 3; "Chapter 4": 1); 0 when unnumbered


class Headings:
    """Cuts pages where headings detected in the text start; their heading paths make the
    section tree (structure.OutlineBuilder, "headings"). Levels come from the numbering's depth,
    else from the type: the level numbered headings in that size have, else one below the
    deepest level of the headings set larger."""

    def __init__(self) -> None:
        self.trail: list[tuple[int, str]] = []
        self.last: tuple[int, ...] = ()  # the number of the last numbered heading, for what may follow
        self.levels: dict[tuple[float, int], int] = {}  # kind -> the level of the numbered headings of that kind
        self.kinds: set[tuple[float, int]] = set()
        self.body = BodySize()

    @property
    def path(self) -> str | None:
        return PATH_SEPARATOR.join(title for _, title in self.trail) or None

    def pieces(self, pages: list[list[Line]], first_page: int) -> Iterator[Piece]:
        self.body.add(pages)
        found = [list(self._find(lines, self.body.on(lines))) for lines in pages]  # the range first: sizes rank
        for number, (lines, headings) in enumerate(zip(pages, found), start=first_page):
            before, cuts = self.path, []
            for heading in headings:
                level = self._level(heading)
                self.trail = [(lvl, t) for lvl, t in self.trail if lvl < level] + [(level, heading.title)]
                cuts.append((heading.index, self.path))
            yield from split(number, lines, before, cuts)

    def _level(self, heading: _Heading) -> int:
        return heading.depth or self._kind_level(heading.kind)

    def _kind_level(self, kind: tuple[float, int]) -> int:
        """The level numbered headings of this kind have, else one below the deepest level of the
        kinds set larger (a heading run in below those on lines of their own in its size)."""
        if kind in self.levels:
            return self.levels[kind]
        return 1 + max((self._kind_level(larger) for larger in self.kinds if larger > kind), default=0)

    def _find(self, lines: list[Line], body: float) -> Iterator[_Heading]:
        i = 0
        while i < len(lines):
            heading, span = self._heading(lines, i, body)
            if heading:
                yield heading
            i += span

    def _heading(self, lines: list[Line], i: int, body: float) -> tuple[_Heading | None, int]:
        """The heading that starts at line i, if one does, and the lines it takes."""
        line = lines[i]
        if line.run_in and not line.bold and (heading := self._run_in(line, i, body)):
            return heading, 1
        numbered = NUMBERING.match(line.text)
        styled = _styled(line, body)
        if not (styled or numbered) or not _title_like(line, numbered, body):
            return None, 1
        if styled and not numbered and _in_figure(lines, i):
            return None, 1
        number = _number(numbered)
        if not styled and not self._plain_numbered(lines, i, numbered, number):
            return None, 1
        joined = _joined(lines, i, numbered, styled, body)
        if joined is None:
            return None, 1
        title, size, span = joined
        kind = (size, 1)
        self.kinds.add(kind)
        depth = 0
        if number:
            self.last = number
            depth = 1 if numbered["word"] else len(number)
            self.levels[kind] = min(self.levels.get(kind, depth), depth)
        return _Heading(i, title.replace(PATH_SEPARATOR, " "), kind, depth), span

    def _run_in(self, line: Line, i: int, body: float) -> _Heading | None:
        """A heading run into its paragraph (bold words, then a wide space): below the headings
        set on lines of their own in the same type."""
        title = " ".join(line.text.split()[:line.run_in]).rstrip(".")
        if not (title and _title_like(line._replace(text=title, spread=0.0), NUMBERING.match(title), body)):
            return None
        kind = (line.size, 0)
        self.kinds.add(kind)
        return _Heading(i, title.replace(PATH_SEPARATOR, " "), kind, 0)

    def _plain_numbered(self, lines: list[Line], i: int, numbered: re.Match, number: tuple[int, ...]) -> bool:
        """A numbered line in body type is a heading when it is short, its title starts with a
        capital, its number follows the last heading's, and it is not one of a numbered list ("1."
        items, or lines numbered alike one after the other). A word ("Chapter 4", "Appendix A")
        needs no sequence; cross-references ("see Appendix E [Installation], page 1085") fail
        the rest."""
        rest = lines[i].text[numbered.end():]
        if len(rest.split()) > _PLAIN_WORDS or (rest and not rest[0].isupper()):
            return False
        if numbered["word"]:
            return True
        if numbered["dot"] or not number or not _follows(self.last, number):
            return False
        neighbours = [lines[j].text for j in (i - 1, i + 1) if 0 <= j < len(lines)]
        return not any(_same_depth(NUMBERING.match(text), number) for text in neighbours)


def _title_like(line: Line, numbered: re.Match | None, body: float) -> bool:
    """A line that could be a heading: short, not a sentence, not a caption, not a table row, not
    a line of a table of contents."""
    text = line.text
    rest = text[numbered.end():] if numbered else text
    words = rest.split()
    if len(words) > _MAX_WORDS or len(text) > 120 or line.spread > _TABLE_SPREAD:
        return False
    if not rest:
        return bool(numbered["word"])  # "Chapter 4" alone; its title may follow on the next line
    if len(_NOT_WORD.sub("", rest)) < 2:
        return False  # an index's letters, "A", "B", and its symbols
    larger = body > 0 and line.size >= _LARGER * body
    if _LEADERS.search(text) or _CAPTION.match(text) or rest[-1] in ".,;:":
        return False
    if _CODE.search(rest) or not (numbered or rest[0].isalnum() or rest[0] in "\"'“‘«"):
        return False  # code set in bold: "\\pgfplotstablecol", "/pgfplots/table/header=true|false"
    if rest[0].islower() and not larger:
        return False  # a large heading may start with a name in code ("containers.Map")
    if _PAGE_AT_END.search(text) and not larger:
        return False  # a contents line; a heading set large carries no page number
    figures = sum(1 for word in words if _FIGURE.fullmatch(word))
    return figures * 2 < len(words)  # a table row of figures


def _in_figure(lines: list[Line], i: int) -> bool:
    """A title inside a figure (a plot's, in its own type): a caption follows it, or the labels
    of axes do (two short lines)."""
    after = [line.text for line in lines[i + 1:i + 3]]
    if after and _CAPTION.match(after[0]):
        return True
    return len(after) == 2 and all(len(text.split()) <= 2 and not text.endswith(":") for text in after) \
        and not any(NUMBERING.match(text) for text in after)  # "Syntax:" over "raise {id}" is no figure


def _joined(lines: list[Line], i: int, numbered: re.Match | None, styled: bool,
            body: float) -> tuple[str, float, int] | None:
    """A heading's whole title, its size and its lines: a label alone ("Part I", "Chapter 4")
    takes the next line as its title; a long title set large or bold, wrapped onto the next
    lines (same type, close below), takes them too. None where that type goes on past a title:
    a paragraph set large or in bold (the prose of a .dtx manual, larger than its listings)."""
    line = lines[i]
    title, size, span = line.text, line.size, 1
    if numbered and numbered.end() == len(line.text):
        after = lines[i + 1] if i + 1 < len(lines) else None
        if after and _styled(after, body) and _title_like(after, None, body):
            return f"{title} {after.text}", max(size, after.size), 2
        return title, size, 1
    while styled and i + span < len(lines):
        after = lines[i + span]
        if not _wraps(lines[i + span - 1], after, line) or NUMBERING.match(after.text):
            break
        if span == 3 or not _title_like(after, None, body):
            return None
        title, span = f"{title} {after.text}", span + 1
    return title, size, span


def _wraps(above: Line, below: Line, first: Line) -> bool:
    """Whether `below` goes on from `above` in the type of a heading's first line, close below."""
    return first.size > 0 and abs(below.size - first.size) < 0.2 and below.bold == first.bold \
        and 0 < above.y - below.y <= 1.6 * first.size


def _number(numbered: re.Match | None) -> tuple[int, ...]:
    """A heading's number as a tuple ("2.3.1": (2, 3, 1); appendix letters count from 1000)."""
    if not numbered:
        return ()
    label = numbered["label"] or numbered["number"]
    parts = []
    for part in label.split("."):
        if part.isdigit():
            parts.append(int(part))
        elif len(part) == 1:
            parts.append(1000 + ord(part) - ord("A"))
        else:
            parts.append(2000 + _roman(part))
    return tuple(parts)


def _roman(text: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for char, following in zip(text, text[1:] + " "):
        value = values[char]
        total += -value if values.get(following, 0) > value else value
    return total


def _follows(last: tuple[int, ...], number: tuple[int, ...]) -> bool:
    """Whether a heading numbered `number` can come next after one numbered `last`: the next at
    some depth (2.3 -> 2.4, 3) or the first below it (2.3 -> 2.3.1)."""
    if not last:
        return all(n == 1 for n in number)  # a list's "3 Mount the pump" is no first heading
    if number == last + (1,):
        return True
    depth = len(number) - 1
    return depth < len(last) and number[:depth] == last[:depth] and number[depth] == last[depth] + 1


def _same_depth(match: re.Match | None, number: tuple[int, ...]) -> bool:
    return bool(match) and not match["word"] and len(_number(match)) == len(number)
