"""Text helpers shared by every room: the one sentence splitter and the one codec for the [n]
citation markers in answers.

A sentence ends at `.`, `!` or `?` (a run of them, and any closing quotes or brackets) followed
by white space, at a blank line, and at the end of the text. With `lines=True` every line break
ends one too: lists, table rows and text planted on a line of its own end without punctuation."""

from __future__ import annotations

import re
from collections.abc import Iterable

_END = r"""[.!?]+["'’”)\]]*(?=\s)"""
_ENDS = re.compile(rf"{_END}|\n[ \t]*\n")
_ENDS_OR_LINES = re.compile(rf"{_END}|\n")

# [1], [2, 3], [1; 4]: the markers an answer cites its passages with.
_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SPACED_MARKER = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")


def sentence_ends(text: str, lines: bool = False) -> list[int]:
    """Where sentences end inside `text`, the end of the text itself not counted (a streamed
    text may go on: "3." could be "3.5")."""
    return [m.end() for m in (_ENDS_OR_LINES if lines else _ENDS).finditer(text)]


def sentence_spans(text: str, lo: int = 0, hi: int | None = None, lines: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each sentence of text[lo:hi], without the white space around it."""
    hi = len(text) if hi is None else hi
    ends = [lo + end for end in sentence_ends(text[lo:hi], lines)]
    cuts = [lo, *(end for end in ends if end < hi), hi]
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        piece = text[start:end]
        left, right = start + len(piece) - len(piece.lstrip()), end - (len(piece) - len(piece.rstrip()))
        if right > left:
            spans.append((left, right))
    return spans


def sentences(text: str, lines: bool = False) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text, lines=lines)]


def page_reference(page: int | None, label: str | None = None, word: str = "page") -> str:
    """A PDF page as a reader finds it: "page 17", or "page 17 (printed 1)" where the page's
    printed label differs from its number; "" without a page."""
    if page is None:
        return ""
    printed = f" (printed {label})" if label and label != str(page) else ""
    return f"{word} {page}{printed}"


def cited_numbers(text: str) -> list[int]:
    """The passage numbers the [n] markers in `text` cite, in order of first appearance."""
    numbers: list[int] = []
    for group in _MARKER.findall(text):
        for n in map(int, re.split(r"\s*[,;]\s*", group)):
            if n not in numbers:
                numbers.append(n)
    return numbers


def without_markers(text: str) -> str:
    return _SPACED_MARKER.sub("", text)


def marker_position(text: str, span: tuple[int, int]) -> int:
    """Where a marker goes in the sentence at `span`: before its final punctuation ("It is blue [1].")."""
    start, end = span
    while end > start and text[end - 1] in ".!?:":
        end -= 1
    return end


def with_markers(text: str, inserts: Iterable[tuple[int, int]]) -> str:
    """`text` with " [n]" put at each (position, n)."""
    for position, n in sorted(inserts, reverse=True):
        text = f"{text[:position]} [{n}]{text[position:]}"
    return text
