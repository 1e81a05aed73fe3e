"""Citations: which passages an answer rests on, marked [n] in its text.

Markers the model wrote are kept. Otherwise each sentence of the answer is attributed to the
excerpt closest to it in embedding space, if close enough, and gets that excerpt's marker."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from docstack.rag.answer import Citation
from docstack.rag.retrieve import Hit
from docstack.text import cited_numbers, marker_position, sentence_spans, with_markers

# Below this cosine similarity an answer sentence is not attributed to any excerpt.
ATTRIBUTION_MIN_SIMILARITY = 0.35

Embed = Callable[[Sequence[str]], np.ndarray]


def cite(answer: str, hits: Sequence[Hit], embed: Embed, hit_vectors: np.ndarray) -> tuple[str, list[Citation]]:
    """The answer with its [n] markers, and the chunks they point to (`hit_vectors`: the hits'
    embeddings, in order)."""
    numbers = [n for n in cited_numbers(answer) if 1 <= n <= len(hits)]
    if not numbers and hits:
        answer, numbers = _attribute(answer, embed, hit_vectors)
    citations = [Citation(n, hits[n - 1].chunk_id, hits[n - 1].source, hits[n - 1].page, hits[n - 1].text)
                 for n in numbers]
    return answer, citations


def _attribute(answer: str, embed: Embed, hit_vectors: np.ndarray) -> tuple[str, list[int]]:
    # Code blocks are quoted material, not claims; they are not attributed on their own.
    spans = [span for span in sentence_spans(answer) if not answer[span[0]:span[1]].startswith("```")]
    if not spans:
        return answer, []
    similarity = embed([answer[a:b] for a, b in spans]) @ hit_vectors.T
    numbers: list[int] = []
    inserts: list[tuple[int, int]] = []
    for span, row in zip(spans, similarity):
        best = int(row.argmax())
        if row[best] < ATTRIBUTION_MIN_SIMILARITY:
            continue
        inserts.append((marker_position(answer, span), best + 1))
        if best + 1 not in numbers:
            numbers.append(best + 1)
    return with_markers(answer, inserts), numbers
