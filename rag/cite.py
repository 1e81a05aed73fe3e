"""Citations: which passages an answer rests on, marked [n] in its text.

Markers the model wrote are kept. Every other sentence that states something (a number, or two
content words) is attributed to a passage, and gets that passage's marker:

- by its words: the passage that holds all of its numbers and most of its content words. Short
  answers ("63.4%", "September 25, 2024", "LoRA") carry too little meaning for an embedding to
  place, and came back with no citation at all; their words and numbers do occur in the passage.
- else by meaning: the passage closest in embedding space, if close enough.

A sentence that neither finds is reported as unsupported (kept in the answer, listed beside it),
so a reader can see which claim no passage backs."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from docstack.index.keywords import STOPWORDS
from docstack.rag.answer import Citation
from docstack.rag.retrieve import Hit
from docstack.text import cited_numbers, marker_position, sentence_spans, with_markers, without_markers

# Below this cosine similarity an answer sentence is not attributed to any excerpt.
ATTRIBUTION_MIN_SIMILARITY = 0.35
# A passage backs a sentence by its words when it holds all the sentence's numbers and at least
# this share of its content words.
WORD_SUPPORT = 0.6

Embed = Callable[[Sequence[str]], np.ndarray]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]{3,}")


@dataclass
class Cited:
    text: str  # the answer with its [n] markers
    numbers: list[int] = field(default_factory=list)  # the passages cited, in order of first citation
    unsupported: list[str] = field(default_factory=list)  # sentences no passage backs


def cite(answer: str, hits: Sequence[Hit], embed: Embed, hit_vectors: np.ndarray) -> tuple[str, list[Citation], list[str]]:
    """The answer with its [n] markers, the chunks they point to (`hit_vectors`: the hits'
    embeddings, in order), and the sentences no passage supports."""
    cited = attribute(answer, [h.text for h in hits], embed, hit_vectors)
    citations = [Citation(n, hits[n - 1].chunk_id, hits[n - 1].source, hits[n - 1].page, hits[n - 1].text,
                          hits[n - 1].page_label) for n in cited.numbers]
    return cited.text, citations, cited.unsupported


def attribute(answer: str, passages: Sequence[str], embed: Embed, vectors: np.ndarray) -> Cited:
    spans = sentence_spans(answer)
    claims = [span for span in spans if _states_something(answer[span[0]:span[1]])]
    if not claims and len(spans) == 1 and _content_words(answer):
        claims = spans  # a one-word answer ("LoRA.") is still a claim
    inserts: list[tuple[int, int]] = []
    unsupported: list[str] = []
    pending: list[tuple[int, int]] = []
    for span in claims:
        sentence = answer[span[0]:span[1]]
        if [n for n in cited_numbers(sentence) if 1 <= n <= len(passages)]:
            continue  # the model cited it
        best = by_words(sentence, passages)
        if best is None:
            pending.append(span)
        else:
            inserts.append((marker_position(answer, span), best + 1))
    if pending and len(passages):
        similarity = embed([without_markers(answer[a:b]) for a, b in pending]) @ np.asarray(vectors).T
        for span, row in zip(pending, similarity, strict=True):
            best = int(row.argmax())
            if row[best] >= ATTRIBUTION_MIN_SIMILARITY:
                inserts.append((marker_position(answer, span), best + 1))
            else:
                unsupported.append(answer[span[0]:span[1]])
    else:
        unsupported += [answer[a:b] for a, b in pending]
    text = with_markers(answer, inserts)
    numbers = [n for n in cited_numbers(text) if 1 <= n <= len(passages)]
    if not numbers and not unsupported and spans:
        # Nothing read as a claim ("Yes.", "Abstract"): cite the passage sharing most of its words.
        best = most_shared(answer, passages)
        if best is not None:
            text = with_markers(answer, [*inserts, (marker_position(answer, spans[-1]), best + 1)])
            numbers = [best + 1]
    return Cited(text, numbers, unsupported)


def most_shared(answer: str, passages: Sequence[str]) -> int | None:
    """The passage (index) sharing the most of the answer's numbers and content words, if any;
    the earliest on a tie."""
    said = _numbers(answer) | _content_words(answer)
    shared = [len(said & (_numbers(p) | _content_words(p))) for p in passages]
    return int(np.argmax(shared)) if shared and max(shared) > 0 else None


def by_words(sentence: str, passages: Sequence[str]) -> int | None:
    """The passage (index) holding all the sentence's numbers and the most of its content words,
    if it holds enough of them; the earliest (best ranked) on a tie."""
    numbers, words = _numbers(sentence), _content_words(sentence)
    if not numbers and not words:
        return None
    best, best_share = None, 0.0
    for k, passage in enumerate(passages):
        if not numbers <= _numbers(passage):
            continue
        share = len(words & _content_words(passage)) / len(words) if words else 1.0
        if share > best_share:
            best, best_share = k, share
    return best if best_share >= WORD_SUPPORT else None


def _states_something(sentence: str) -> bool:
    """Code blocks are quoted material, and "Sure!" or "Here is what I found:" claim nothing."""
    plain = without_markers(sentence)
    return not plain.startswith("```") and (bool(_numbers(plain)) or len(_content_words(plain)) >= 2)


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(without_markers(text))}


def _content_words(text: str) -> set[str]:
    # The first five letters stand in for a stem: "serviced" and "service" match.
    return {w.lower()[:5] for w in _WORD.findall(text) if w.lower() not in STOPWORDS}
