"""Naming a document (its path or a unique part of it) and reading it back from the index as
passages: the chunks of each record merged again, in document order, with page and section."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from docstack.index.base import ChunkIndex, DocumentRecord, StoredChunk
from docstack.ingest.structure import Structure

from docstack.console import DocstackError


def find(index: ChunkIndex, name: str, collection: str) -> DocumentRecord:
    """The document `name` stands for: its path, its source, its file name (with or without the
    suffix), or a unique part of its path."""
    documents = index.documents()
    wanted = str(Path(name).expanduser().resolve()) if name.strip() else ""
    for doc in documents:
        if name in (doc.path, doc.source) or doc.path == wanted:
            return doc
    lowered = name.lower()
    named = [doc for doc in documents if lowered in (Path(doc.path).name.lower(), Path(doc.path).stem.lower())]
    if len(named) == 1:  # "manual" names manual.pdf even beside manual-v2.pdf
        return named[0]
    matches = [doc for doc in documents if lowered and (lowered in doc.source.lower() or lowered in doc.path.lower())]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DocstackError(f"no document matching '{name}' in collection '{collection}'; "
                            f"`docstack collections --documents` lists them")
    names = ", ".join(doc.source for doc in matches[:8]) + (", …" if len(matches) > 8 else "")
    raise DocstackError(f"'{name}' matches {len(matches)} documents in collection '{collection}' ({names}); "
                        f"name one more exactly")


def structure(index: ChunkIndex, doc: DocumentRecord) -> Structure:
    """The stored structure (an empty one for documents ingested before structures were kept)."""
    data = index.structure(doc.path)
    return Structure.from_json(data) if data else Structure([], doc.pages)


@dataclass
class Passage:
    """A record's text as ingest read it (a page, or a section of a page), rebuilt from its chunks."""

    page: int | None
    section: str | None
    text: str
    chunk_ids: list[int] = field(default_factory=list)


def passages(chunks: list[StoredChunk]) -> list[Passage]:
    """Chunks (in document order) merged back into their records: consecutive chunks of one
    record overlap by their offsets, so the overlap is taken once."""
    out: list[Passage] = []
    end = 0
    for chunk in chunks:
        last = out[-1] if out else None
        if last and (last.page, last.section) == (chunk.page, chunk.section) and chunk.start <= end + 2:
            if chunk.end > end:
                last.text += (" " if chunk.start > end else "") + chunk.text[max(0, end - chunk.start):]
                end = chunk.end
            last.chunk_ids.append(chunk.chunk_id)
            continue
        out.append(Passage(chunk.page, chunk.section, chunk.text, [chunk.chunk_id]))
        end = chunk.end
    return out
