"""Retrieval: dense (FAISS), keyword (SQLite FTS5, BM25) or both fused, with metadata filters,
optional cross-encoder reranking and near-duplicate removal.

Every hit's `score` is the cosine similarity of query and chunk embeddings, whatever ranked it:
it means the same across queries and modes, so one threshold can decide abstention."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import numpy as np

from docstack.console import DocstackError
from docstack.ingest.embedder import Embedder
from docstack.ingest.store import ChunkStore

log = logging.getLogger(__name__)

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[str, ...] = ("dense", "keyword", "hybrid")

RRF_K = 60  # reciprocal rank fusion's damping constant (Cormack et al. 2009)
# A candidate this close to a better one adds nothing: by embedding, or by sharing this share of
# its word trigrams (the same paragraph under another heading embeds quite differently).
DUPLICATE_SIMILARITY = 0.95
DUPLICATE_CONTAINMENT = 0.8


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    source: str
    page: int | None
    section: str | None
    score: float
    text: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Filters:
    """`source`: a substring of the source path, or a glob if it has * ? or [. `pages`: inclusive range."""

    source: str | None = None
    pages: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return self.source is not None or self.pages is not None

    @classmethod
    def parse(cls, source: str | None = None, pages: str | None = None) -> Filters:
        if pages is None:
            return cls(source=source)
        first, _, last = pages.partition("-")
        try:
            span = (int(first), int(last or first))
        except ValueError:
            raise DocstackError(f"--pages '{pages}' is not a page or a range like 3-10") from None
        if span[0] < 1 or span[1] < span[0]:
            raise DocstackError(f"--pages '{pages}' is not a valid range (pages start at 1)")
        return cls(source=source, pages=span)


class Reranker(Protocol):
    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray: ...


class Retriever:
    def __init__(self, store: ChunkStore, embedder: Embedder, reranker: Reranker | None = None):
        self.store = store
        self.embedder = embedder
        self.reranker = reranker

    def run(self, query: str, k: int, mode: Mode = "hybrid", filters: Filters | None = None) -> list[Hit]:
        if mode not in MODES:
            raise DocstackError(f"search mode '{mode}' is not one of {', '.join(MODES)}")
        query_vector = self.embedder.embed([query])[0]
        allowed = self.store.filter_ids(filters.source, filters.pages) if filters else None
        depth = max(4 * k, 20)
        ranked = []
        if mode in ("dense", "hybrid"):
            ranked.append([i for i, _ in self.store.search(query_vector, depth, allowed)])
        if mode in ("keyword", "hybrid"):
            ranked.append([i for i, _ in self.store.keyword_search(query, depth, allowed)])
        candidates = fuse(ranked)[:depth]
        if not candidates:
            return []
        vectors = self.store.vectors(candidates)
        cosine = vectors @ query_vector
        rows = self.store.get(candidates)
        texts = [rows[i].text if i in rows else "" for i in candidates]
        order = list(range(len(candidates)))
        if self.reranker is not None:
            rerank = self.reranker.scores(query, texts)
            order.sort(key=lambda j: -float(rerank[j]))
        chosen = _without_near_duplicates(order, vectors, texts, k)
        return [
            Hit(c, r.source, r.page, r.section, round(float(cosine[j]), 4), r.text)
            for j in chosen
            if (r := rows.get(c := candidates[j])) is not None
        ]


def fuse(rankings: Sequence[Sequence[int]]) -> list[int]:
    """Reciprocal rank fusion: ids ordered by the sum of 1 / (RRF_K + rank) over the rankings."""
    if len(rankings) == 1:
        return list(rankings[0])
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda item: -scores[item])


def _without_near_duplicates(order: list[int], vectors: np.ndarray, texts: list[str], k: int) -> list[int]:
    chosen: list[int] = []
    shingles = {}
    for j in order:
        shingles[j] = _trigrams(texts[j])
        if chosen and (float(np.max(vectors[chosen] @ vectors[j])) >= DUPLICATE_SIMILARITY
                       or any(_containment(shingles[j], shingles[c]) >= DUPLICATE_CONTAINMENT for c in chosen)):
            continue
        chosen.append(j)
        if len(chosen) == k:
            break
    return chosen


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def _containment(a: set, b: set) -> float:
    return len(a & b) / max(1, min(len(a), len(b)))
