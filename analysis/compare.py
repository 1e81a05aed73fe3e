"""`docstack compare`: what changed between two versions of a document, section by section.

No model: sections are aligned by title (numbering, case and spacing aside), then those left
over by their content (a moved or renamed section keeps most of its words); aligned sections
are compared sentence by sentence. A change is reported with its pages on both sides and the
sentences added and removed, which say what changed better than a paraphrase would. Documents
without an outline are compared page by page."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from docstack.analysis.documents import find, passages, structure
from docstack.index.base import ChunkIndex, DocumentRecord
from docstack.ingest.structure import Structure

from docstack.console import DocstackError
from docstack.text import sentences

# Two unaligned sections are the same section moved or renamed when this share of their word
# pairs is common to both.
CONTENT_MATCH = 0.5
SHOWN = 3  # sentences added / removed quoted per change
_HEADING_MARKS = re.compile(r"^\s*#{1,6}\s+")


@dataclass
class _Part:
    title: str
    key: str  # the title as aligned
    level: int
    first: int | None
    last: int | None
    text: str


def compare(index: ChunkIndex, a: str, b: str, collection: str) -> dict:
    doc_a, doc_b = find(index, a, collection), find(index, b, collection)
    if doc_a.path == doc_b.path:
        raise DocstackError(f"'{a}' and '{b}' name the same document ({doc_a.source})")
    tree_a, tree_b = structure(index, doc_a), structure(index, doc_b)
    parts_a, parts_b = _parts(index, doc_a, tree_a), _parts(index, doc_b, tree_b)
    pairs, removed, added = _align(parts_a, parts_b)
    changed, unchanged = [], 0
    for pa, pb in pairs:
        change = _change(pa, pb, tree_a, tree_b)
        if change is None:
            unchanged += 1
        else:
            changed.append(change)
    return {"a": doc_a.source, "b": doc_b.source, "sections": [len(parts_a), len(parts_b)],
            "added": [_where(p, tree_b) for p in added], "removed": [_where(p, tree_a) for p in removed],
            "changed": changed, "unchanged": unchanged}


def _parts(index: ChunkIndex, doc: DocumentRecord, tree: Structure) -> list[_Part]:
    """The document's sections with their own text (a section's subsections are parts of their
    own), or its pages where it has no outline."""
    merged = passages(index.chunks(doc.path))
    if tree.sections:
        texts: dict[int, list[str]] = {}
        for p in merged:
            at = tree.section_at(p.page, p.section)
            texts.setdefault(-1 if at is None else at, []).append(p.text)
        parts = [_Part(s.title, _key(s.title), s.level, s.page, s.end_page, "\n".join(texts.get(i, [])))
                 for i, s in enumerate(tree.sections)]
        if texts.get(-1):
            parts.insert(0, _Part("(before the first section)", "(before)", 1, None, None, "\n".join(texts[-1])))
        return parts
    pages: dict[int | None, list[str]] = {}
    for p in merged:
        pages.setdefault(p.page, []).append(p.text)
    return [_Part(f"page {n}" if n else "text", f"page {n}", 1, n, n, "\n".join(t)) for n, t in pages.items()]


def _key(title: str) -> str:
    """A title as aligned: without its numbering ("2.3.1", "Chapter 4", "A.2"), case or spacing."""
    title = re.sub(r"^(?:(?:chapter|appendix|section|part)\s+)?(?:[0-9A-Z]{1,3}(?:\.[0-9]+)*\.?)\s+", "",
                   title.strip(), flags=re.IGNORECASE)
    return " ".join(title.split()).casefold()


def _align(a: list[_Part], b: list[_Part]) -> tuple[list[tuple[_Part, _Part]], list[_Part], list[_Part]]:
    pairs: list[tuple[_Part, _Part]] = []
    left_b = list(range(len(b)))
    unmatched_a = []
    for pa in a:  # by title, the nearest unmatched one in document order
        match = next((j for j in left_b if b[j].key == pa.key), None)
        if match is None:
            unmatched_a.append(pa)
        else:
            left_b.remove(match)
            pairs.append((pa, b[match]))
    removed = []
    for pa in unmatched_a:  # moved or renamed: by content
        scores = [(_overlap(pa.text, b[j].text), j) for j in left_b]
        best = max(scores, default=(0.0, -1))
        if best[0] >= CONTENT_MATCH:
            left_b.remove(best[1])
            pairs.append((pa, b[best[1]]))
        else:
            removed.append(pa)
    return pairs, removed, [b[j] for j in left_b]


def _overlap(x: str, y: str) -> float:
    bx, by = _bigrams(x), _bigrams(y)
    return len(bx & by) / max(1, min(len(bx), len(by))) if bx and by else 0.0


def _bigrams(text: str) -> set[tuple[str, str]]:
    words = re.findall(r"\w+", text.casefold())
    return set(zip(words, words[1:]))


def _change(pa: _Part, pb: _Part, tree_a: Structure, tree_b: Structure) -> dict | None:
    old, new = _sentences(pa.text), _sentences(pb.text)
    renamed = pa.title != pb.title
    if [s.casefold() for s in old] == [s.casefold() for s in new] and not renamed:
        return None
    matcher = difflib.SequenceMatcher(None, [s.casefold() for s in old], [s.casefold() for s in new], autojunk=False)
    removed, added = [], []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            removed += old[i1:i2]
        if op in ("insert", "replace"):
            added += new[j1:j2]
    if not removed and not added and not renamed:
        return None
    return {"title": pb.title, "old_title": pa.title if renamed else None,
            "a_pages": [pa.first, pa.last], "b_pages": [pb.first, pb.last],
            "a_page_labels": [tree_a.label(pa.first), tree_a.label(pa.last)],
            "b_page_labels": [tree_b.label(pb.first), tree_b.label(pb.last)],
            "summary": _summary(removed, added, pa.title if renamed else None),
            "removed_sentences": removed[:SHOWN], "added_sentences": added[:SHOWN]}


def _sentences(text: str) -> list[str]:
    """The text's sentences, a Markdown heading's '#' marks left out: a section moved to another
    level ('### Title' became '## Title') has not changed its words."""
    return [" ".join(_HEADING_MARKS.sub("", s).split()) for s in sentences(text) if s.strip()]


def _summary(removed: list[str], added: list[str], old_title: str | None) -> str:
    parts = [f"renamed from '{old_title}'"] if old_title else []
    if removed and added and len(removed) == len(added) == 1:
        parts.append(f"one sentence reworded: '{_short(removed[0])}' became '{_short(added[0])}'")
    else:
        if added:
            parts.append(f"{len(added)} sentence{'s' * (len(added) > 1)} added, first: '{_short(added[0])}'")
        if removed:
            parts.append(f"{len(removed)} sentence{'s' * (len(removed) > 1)} removed, first: '{_short(removed[0])}'")
    return "; ".join(parts)


def _short(sentence: str, limit: int = 120) -> str:
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0] + "…"


def _where(part: _Part, tree: Structure) -> dict:
    return {"title": part.title, "pages": [part.first, part.last], "page_labels": [tree.label(part.first),
                                                                                  tree.label(part.last)]}
