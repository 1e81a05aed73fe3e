"""`docstack mentions`: every place a term occurs, not the top k.

Exact occurrences come from the keyword index (every chunk whose words hold the phrase), checked
against the text with a pattern that ignores case and spacing; the overlap between neighbouring
chunks would count one occurrence twice, so occurrences are keyed by their offset in the record.
Passages that speak of the term in other words (nearest by embedding, above a similarity floor)
are added as "related", never counted as mentions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from docstack.analysis.documents import find, structure
from docstack.index.base import ChunkIndex, Filters, StoredChunk
from docstack.index.keywords import STOPWORDS
from docstack.ingest.structure import Structure

from docstack.console import DocstackError

Embed = Callable[[Sequence[str]], np.ndarray]

# A related passage is at least this close to the term (cosine, MiniLM): below it, passages that
# merely share the document's topic came back.
RELATED_MIN_SIMILARITY = 0.45
# A related passage's words count as close when they are this many words apart or fewer.
NEAR_WORDS = 12
QUOTE_CHARS = 110  # either side of the match
_LEADERS = re.compile(r"(?:\s*\.){4,}\s*")  # a contents line's dotted leaders


@dataclass(frozen=True)
class Mention:
    source: str
    page: int | None
    page_label: str | None
    section: str | None
    quote: str
    match: str  # "exact" or "related"
    chunk_id: int

    def to_json(self) -> dict:
        return asdict(self)


def pattern(term: str) -> re.Pattern:
    """The term as typed, any case, any run of spaces (or a line break) between its words; whole
    words at its ends where it starts or ends with a letter or digit."""
    words = term.split()
    if not words:
        raise DocstackError("the term is empty")
    body = r"\s+".join(re.escape(w) for w in words)
    left = r"(?<![\w])" if words[0][0].isalnum() else ""
    right = r"(?![\w])" if words[-1][-1].isalnum() else ""
    return re.compile(left + body + right, re.IGNORECASE)


def mentions(index: ChunkIndex, embed: Embed, term: str, collection: str, document: str | None = None,
             related: int = 5) -> dict:
    """{"term", "count", "mentions": [...]}: exact occurrences in document order, then at most
    `related` passages about the term in other words."""
    docs = [find(index, document, collection)] if document else index.documents()
    filters = Filters(source=docs[0].source) if document else None
    wanted = {d.path for d in docs}
    structures: dict[str, Structure] = {}

    def tree(path: str) -> Structure:
        if path not in structures:
            structures[path] = structure(index, next(d for d in docs if d.path == path))
        return structures[path]

    exact, seen_chunks = _exact(index, term, filters, wanted, tree)
    found = [m for _, m in sorted(exact, key=lambda pair: pair[0])]
    if related:
        exact_pages = {(m.source, m.page) for _, m in exact}
        near = _near(index, term, filters, wanted, exact_pages, tree, related)
        found += near
        if len(near) < related:
            taken = seen_chunks | {m.chunk_id for m in near}
            found += _related(index, embed, term, filters, wanted, taken, tree, related - len(near))
    return {"term": term, "count": len(exact), "documents": len(docs),
            "mentions": [m.to_json() for m in found]}


def _exact(index, term, filters, wanted, tree) -> tuple[list[tuple[tuple, Mention]], set[int]]:
    regex = pattern(term)
    chunks = index.fetch(index.containing(term, filters))
    occurrences: dict[tuple, tuple[tuple, Mention]] = {}
    for chunk_id in sorted(chunks):
        chunk = chunks[chunk_id]
        if chunk.path not in wanted:
            continue
        for match in regex.finditer(chunk.text):
            place = (chunk.path, chunk.page, chunk.section, chunk.start + match.start())
            if place not in occurrences:
                order = (chunk.path, chunk_id, match.start())
                quote = _quote(chunk.text, match.span())
                occurrences[place] = (order, _mention(chunk, tree(chunk.path), quote, "exact"))
    return list(occurrences.values()), {m.chunk_id for _, m in occurrences.values()}


def _near(index, term, filters, wanted, exact_pages, tree, limit) -> list[Mention]:
    """Pages that speak of the term in other words: every word of it (any ending, any order)
    close together, best first: within a section whose title has them all, then by how few words
    apart they are. A printed index's concepts ("bugs, reporting" for a page on reporting bugs)
    are found this way where the phrase itself never occurs."""
    stems = _stems(term)
    if not stems:
        return []
    chunks = index.fetch(index.containing(" ".join(stems), filters, any_order=True))
    best: dict[tuple, tuple[float, StoredChunk, tuple[int, int]]] = {}
    for chunk in chunks.values():
        if chunk.path not in wanted or (chunk.source, chunk.page) in exact_pages or _is_contents(chunk.text):
            continue
        found = _window(chunk.text, stems)
        if found is None:
            continue
        at = tree(chunk.path).section_at(chunk.page, chunk.section)
        title = tree(chunk.path).sections[at].title if at is not None else (chunk.section or "")
        titled = all(any(w.startswith(s) for w in _words(title)) for s in stems)
        score = 2.0 * titled + 1.0 / (1.0 + found[2] / NEAR_WORDS)
        key = (chunk.path, chunk.page if chunk.page is not None else chunk.chunk_id)
        if key not in best or score > best[key][0]:
            best[key] = (score, chunk, found[:2])
    ranked = sorted(best.values(), key=lambda item: -item[0])[:limit]
    ranked.sort(key=lambda item: (item[1].path, item[1].chunk_id))
    return [_mention(c, tree(c.path), _quote(c.text, span), "related") for _, c, span in ranked]


def _is_contents(text: str) -> bool:
    """A table of contents (or an index) names every topic once: dotted leaders give it away."""
    return len(_LEADERS.findall(text)) >= 3


def _stems(term: str) -> list[str]:
    """The term's content words, each cut to a stem FTS5 and tsquery can take as a prefix
    ("reporting" -> "repor", "bugs" -> "bug")."""
    words = [w.lower() for w in re.findall(r"\w+", term) if w.lower() not in STOPWORDS]
    return list(dict.fromkeys(w[: max(3, min(5, len(w) - 1))] for w in words))


def _words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"\w+", text)]


def _window(text: str, stems: list[str]) -> tuple[int, int, int] | None:
    """The shortest run of the text's words holding a word starting with each stem: its character
    span and its length in words; None when some stem is missing."""
    words = [(m.start(), m.end(), m.group().lower()) for m in re.finditer(r"\w+", text)]
    hits = [(i, k) for i, (_, _, w) in enumerate(words) for k, s in enumerate(stems) if w.startswith(s)]
    if len({k for _, k in hits}) < len(stems):
        return None
    best, last = None, {}
    for i, k in hits:
        last[k] = i
        if len(last) == len(stems):
            start = min(last.values())
            if best is None or i - start < best[1] - best[0]:
                best = (start, i)
    start, end = best
    return words[start][0], words[end][1], end - start + 1


def _related(index, embed, term, filters, wanted, exact_chunks, tree, limit) -> list[Mention]:
    vector = embed([term])[0]
    hits = [(i, s) for i, s in index.dense_search(vector, limit * 3, filters)
            if s >= RELATED_MIN_SIMILARITY and i not in exact_chunks]
    chunks = index.fetch([i for i, _ in hits])
    kept = [chunks[i] for i, _ in hits if i in chunks and chunks[i].path in wanted][:limit]
    kept.sort(key=lambda c: (c.path, c.chunk_id))
    return [_mention(c, tree(c.path), _opening(c.text), "related") for c in kept]


def _mention(chunk: StoredChunk, tree: Structure, quote: str, kind: str) -> Mention:
    index = tree.section_at(chunk.page, chunk.section)
    section = tree.sections[index].title if index is not None else _last(chunk.section)
    return Mention(chunk.source, chunk.page, tree.label(chunk.page), section, quote, kind, chunk.chunk_id)


def _quote(text: str, span: tuple[int, int]) -> str:
    """The words around a span of the text, cut at word boundaries, on one line."""
    start, end = max(0, span[0] - QUOTE_CHARS), min(len(text), span[1] + QUOTE_CHARS)
    while start > 0 and not text[start - 1].isspace():
        start += 1
    while end < len(text) and not text[end].isspace():
        end -= 1
    quote = _LEADERS.sub(" … ", " ".join(text[start:end].split()))
    return ("…" if start > 0 else "") + quote + ("…" if end < len(text) else "")


def _opening(text: str, limit: int = 2 * QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + "…"


def _last(path: str | None) -> str | None:
    return path.rsplit(" > ", 1)[-1] if path else None
