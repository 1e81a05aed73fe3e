"""Retrieval over any index backend: dense, keyword (BM25) or both fused, with metadata filters,
optional cross-encoder reranking and near-duplicate removal.

Every hit's `score` is the cosine similarity of query and chunk embeddings, whatever ranked it:
it means the same across queries and modes, so one threshold can decide abstention."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import numpy as np

import docstack.telemetry as telemetry
from docstack.console import DocstackError
from docstack.index.base import ChunkIndex, Filters, StoredChunk
from docstack.index.embedder import Embedder

log = logging.getLogger(__name__)

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[str, ...] = ("dense", "keyword", "hybrid")

# Hybrid ranking: a convex combination of min-max normalised cosine and BM25 scores. On squad-dev
# (`docstack eval retrieval`) it gave nDCG@10 0.917 against 0.883 for reciprocal rank fusion,
# 0.890 for BM25 and 0.823 for dense alone; weights 0.4-0.6 were within 0.004 of each other.
DENSE_WEIGHT = 0.5
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
    page_label: str | None = None  # the page's printed label, where the PDF defines labels

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Retrieved:
    """What a retrieval found: the hits, best first, with their stored chunks (vectors, the
    context shield's verdicts, files), so later stages need not read the index again."""

    hits: list[Hit]
    chunks: dict[int, StoredChunk]

    def vectors(self, hits: Sequence[Hit]) -> np.ndarray:
        """The embeddings of `hits` (some of this retrieval's), in their order."""
        if not hits:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([self.chunks[h.chunk_id].vector for h in hits])

    def verdicts(self) -> dict[int, str | None]:
        return {h.chunk_id: self.chunks[h.chunk_id].safety for h in self.hits}

    def above(self, min_score: float) -> Retrieved:
        """Only the hits at least this close to the question."""
        return Retrieved([h for h in self.hits if h.score >= min_score], self.chunks)


class Reranker(Protocol):
    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray: ...


class PageLabels:
    """Documents' printed page labels, read from their stored structure once per collection
    generation (the Octave manual's structure is ~200 KB of JSON: not for every search)."""

    def __init__(self):
        self._labels: dict[tuple[int, str], tuple[int, list[str] | None]] = {}

    def label(self, index: ChunkIndex, path: str, page: int | None) -> str | None:
        if page is None:
            return None
        key = (id(index), path)
        cached = self._labels.get(key)
        if cached is None or cached[0] != index.generation:
            structure = index.structure(path) or {}
            cached = (index.generation, structure.get("page_labels"))
            self._labels[key] = cached
        labels = cached[1]
        return labels[page - 1] if labels and 1 <= page <= len(labels) else None


class Retriever:
    def __init__(self, index: ChunkIndex, embedder: Embedder, reranker: Reranker | None = None,
                 labels: PageLabels | None = None):
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self.labels = labels or PageLabels()

    def run(self, query: str, k: int, mode: Mode = "hybrid", filters: Filters | None = None) -> Retrieved:
        if mode not in MODES:
            raise DocstackError(f"search mode '{mode}' is not one of {', '.join(MODES)}")
        with telemetry.span("docstack.retrieve", **{"docstack.search.mode": mode, "docstack.k": k}) as span:
            retrieved = self._run(query, k, mode, filters)
            span.set_attributes({"docstack.hits": len(retrieved.hits),
                                 "docstack.best_score": max((h.score for h in retrieved.hits), default=None)})
            return retrieved

    def _run(self, query: str, k: int, mode: Mode, filters: Filters | None) -> Retrieved:
        query_vector = self.embedder.embed([query])[0]
        depth = max(4 * k, 20)
        dense = self.index.dense_search(query_vector, depth, filters) if mode != "keyword" else []
        keyword = self.index.keyword_search(query, depth, filters) if mode != "dense" else []
        ranked = fuse(dense, keyword)[:depth]
        stored = self.index.fetch(ranked)
        candidates = [stored[i] for i in ranked if i in stored]  # a chunk removed meanwhile is left out
        if not candidates:
            return Retrieved([], {})
        vectors = np.vstack([c.vector for c in candidates])
        cosine = vectors @ query_vector
        texts = [c.text for c in candidates]
        order = list(range(len(candidates)))
        if self.reranker is not None:
            rerank = self.reranker.scores(query, texts)
            order.sort(key=lambda j: -float(rerank[j]))
        chosen = _without_near_duplicates(order, vectors, texts, k)
        hits = [Hit(candidates[j].chunk_id, candidates[j].source, candidates[j].page, candidates[j].section,
                    round(float(cosine[j]), 4), candidates[j].text,
                    self.labels.label(self.index, candidates[j].path, candidates[j].page)) for j in chosen]
        return Retrieved(hits, {h.chunk_id: stored[h.chunk_id] for h in hits})


def fuse(dense: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]],
         dense_weight: float = DENSE_WEIGHT) -> list[int]:
    """Ids by DENSE_WEIGHT x normalised cosine + (1 - DENSE_WEIGHT) x normalised BM25; an id
    missing from one list scores 0 there. With one list, its own order."""
    if not dense or not keyword:
        return [i for i, _ in (dense or keyword)]
    combined: dict[int, float] = {}
    for scores, weight in ((dense, dense_weight), (keyword, 1.0 - dense_weight)):
        values = [s for _, s in scores]
        low, span = min(values), (max(values) - min(values)) or 1.0
        for item, score in scores:
            combined[item] = combined.get(item, 0.0) + weight * (score - low) / span
    return sorted(combined, key=lambda item: -combined[item])


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
