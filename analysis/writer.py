"""The model as the analysis operations use it: one request at a time through the stack, its
window, and its own tokenizer to count what goes in (the router's rule: never a silent cut)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from docstack.analysis.documents import Passage

from docstack.text import sentence_spans

# Tokens kept free in every request for the instructions and the chat template around the text.
PROMPT_RESERVE = 256


@dataclass
class Writer:
    model: str  # the stack's model id (part of every cache key)
    window: int  # prompt + answer, tokens
    count: Callable[[str], int]  # the model's own tokenizer
    complete: Callable[[list[dict], int], str]  # messages, max answer tokens -> text
    budgeted: bool = True  # a small CPU model: whole-document work is budgeted (see summarize)

    def room(self, answer_tokens: int) -> int:
        """Tokens of document text one request can carry."""
        return max(64, self.window - answer_tokens - PROMPT_RESERVE)


@dataclass
class Packed:
    """Passages packed for one request, in document order, each headed by its page."""

    passages: list[Passage]
    text: str
    tokens: int

    @property
    def pages(self) -> tuple[int | None, int | None]:
        pages = [p.page for p in self.passages if p.page is not None]
        return (min(pages), max(pages)) if pages else (None, None)


def heading(passage: Passage) -> str:
    return f"[page {passage.page}]" if passage.page is not None else f"[{passage.section or 'text'}]"


def pack(passages: Sequence[Passage], count: Callable[[str], int], room: int) -> list[Packed]:
    """Consecutive passages in groups that fit `room` tokens; a passage larger than a group is
    cut at sentence ends first, so nothing is dropped or cut silently."""
    groups: list[Packed] = []
    current: list[Passage] = []
    used = 0
    for passage in _fitting(passages, count, room):
        size = count(heading(passage) + "\n" + passage.text) + 2
        if current and used + size > room:
            groups.append(_packed(current, used))
            current, used = [], 0
        current.append(passage)
        used += size
    if current:
        groups.append(_packed(current, used))
    return groups


def _packed(passages: list[Passage], tokens: int) -> Packed:
    return Packed(passages, "\n\n".join(heading(p) + "\n" + p.text for p in passages), tokens)


def _fitting(passages: Sequence[Passage], count: Callable[[str], int], room: int):
    for passage in passages:
        if count(passage.text) + 16 <= room:
            yield passage
            continue
        piece = ""
        for part in _pieces(passage.text, count, room):
            if piece and count(piece + " " + part) + 16 > room:
                yield Passage(passage.page, passage.section, piece, passage.chunk_ids)
                piece = ""
            piece = (piece + " " + part).strip()
        if piece:
            yield Passage(passage.page, passage.section, piece, passage.chunk_ids)


def _pieces(text: str, count: Callable[[str], int], room: int):
    """Sentences, and a sentence longer than a whole request (a table flattened into one line)
    in runs of words that fit."""
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        if count(sentence) + 16 <= room:
            yield sentence
            continue
        run: list[str] = []
        for word in sentence.split():
            if run and count(" ".join(run + [word])) + 16 > room:
                yield " ".join(run)
                run = []
            run.append(word)
        if run:
            yield " ".join(run)
