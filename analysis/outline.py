"""`docstack outline`: a document's section tree as ingest found it, with printed page labels."""

from __future__ import annotations

from docstack.analysis.documents import find, structure
from docstack.index.base import ChunkIndex


def outline(index: ChunkIndex, name: str, collection: str) -> dict:
    doc = find(index, name, collection)
    tree = structure(index, doc)
    return {"document": doc.source, "pages": doc.pages, "source": tree.source,
            "sections": [{"title": s.title, "level": s.level, "page": s.page, "page_label": tree.label(s.page),
                          "end_page": s.end_page} for s in tree.sections]}
