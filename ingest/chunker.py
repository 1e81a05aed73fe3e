"""Structure-aware, token-sized chunking.

Text is cut at paragraph boundaries first, sentences next and words last, never mid-word, and
sizes are counted with the embedding model's own tokenizer so no chunk is cut silently when it
is embedded. Each chunk keeps its character offsets inside its record."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from docstack.index.base import Chunk
from docstack.ingest.readers import Record
from docstack.text import sentence_spans

TokenCounter = Callable[[Sequence[str]], list[int]]

_PARAGRAPH = re.compile(r"(?:(?!\n[ \t]*\n).)+", re.S)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    tokens: int


class Chunker:
    def __init__(self, count_tokens: TokenCounter, chunk_tokens: int = 200, overlap: int = 40):
        if not 0 <= overlap < chunk_tokens:
            raise ValueError("chunk overlap must be >= 0 and smaller than the chunk size")
        self.count_tokens = count_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap

    def run(self, records: Iterable[Record]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for record in records:
            for start, end in self._pack(self._units(record.text)):
                chunks.append(Chunk(record.text[start:end], record.page, record.section, start, end))
        return chunks

    def _units(self, text: str) -> list[_Span]:
        """Spans no larger than the chunk size: paragraphs, else their sentences, else word runs."""
        units: list[_Span] = []
        for para in self._spans(_PARAGRAPH, text, 0, len(text)):
            if para.tokens <= self.chunk_tokens:
                units.append(para)
                continue
            for sent in self._counted(text, sentence_spans(text, para.start, para.end)):
                if sent.tokens <= self.chunk_tokens:
                    units.append(sent)
                else:
                    units.extend(self._word_runs(text, sent))
        return units

    def _spans(self, pattern: re.Pattern, text: str, lo: int, hi: int) -> list[_Span]:
        bounds = []
        for m in pattern.finditer(text, lo, hi):
            piece = m.group()
            start = m.start() + (len(piece) - len(piece.lstrip()))
            end = m.end() - (len(piece) - len(piece.rstrip()))
            if end > start:
                bounds.append((start, end))
        return self._counted(text, bounds)

    def _counted(self, text: str, bounds: list[tuple[int, int]]) -> list[_Span]:
        counts = self.count_tokens([text[s:e] for s, e in bounds]) if bounds else []
        return [_Span(s, e, n) for (s, e), n in zip(bounds, counts)]

    def _word_runs(self, text: str, sent: _Span) -> list[_Span]:
        runs: list[_Span] = []
        start = end = None
        total = 0
        for word in self._spans(_WORD, text, sent.start, sent.end):
            if start is not None and total + word.tokens > self.chunk_tokens:
                runs.append(_Span(start, end, total))
                start, total = None, 0
            # A single "word" longer than a chunk (a hash, a URL) becomes its own unit;
            # the embedder truncates only that pathological case.
            start = word.start if start is None else start
            end, total = word.end, total + word.tokens
        if start is not None:
            runs.append(_Span(start, end, total))
        return runs

    def _pack(self, units: list[_Span]) -> list[tuple[int, int]]:
        chunks: list[tuple[int, int]] = []
        current: list[_Span] = []
        size = 0
        for unit in units:
            if current and size + unit.tokens > self.chunk_tokens:
                chunks.append((current[0].start, current[-1].end))
                current = self._overlap_tail(current, room=self.chunk_tokens - unit.tokens)
                size = sum(u.tokens for u in current)
            current.append(unit)
            size += unit.tokens
        if current:
            chunks.append((current[0].start, current[-1].end))
        return chunks

    def _overlap_tail(self, units: list[_Span], room: int) -> list[_Span]:
        """The last units of the previous chunk, up to the overlap budget, carried into the next."""
        tail: list[_Span] = []
        size = 0
        for unit in reversed(units[1:]):
            if size + unit.tokens > min(self.overlap, room):
                break
            tail.insert(0, unit)
            size += unit.tokens
        return tail
