"""The index interface: what every backend of a collection gives the rest of docstack.

A collection holds documents' chunks with their text, place (source, page, section), vector and
the context shield's stored verdict. `ChunkIndex` is one collection; `IndexBackend` is where the
collections live (folders of SQLite + FAISS files, or a PostgreSQL database with pgvector).
Hybrid fusion, deduplication and reranking sit above this interface (docstack.rag.retrieve), so
they work on any backend. The contract tests (tests/test_index_contract.py) hold every backend
to the same behaviour."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from docstack.console import DocstackError


@dataclass(frozen=True)
class Chunk:
    """A passage cut from a record, with its character offsets inside the record's text."""

    text: str
    page: int | None
    section: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A file's chunks ready to store. `path` (resolved) identifies it; `source` is how it was named.

    A large file arrives in parts: the first replaces what the path held, the last records the
    document (its hash), so an interrupted file is ingested again in full next time."""

    path: str
    source: str
    sha256: str
    pages: int
    bytes: int
    mtime: float
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    first: bool = True
    last: bool = True
    safety: Sequence[str | None] | None = None  # per chunk: the context shield's verdict
    structure: dict | None = None  # the last part: section tree, page labels (ingest.structure)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the index returns it: with its vector and the shield's stored verdict."""

    chunk_id: int
    path: str  # the resolved file it came from (`source` is the path as it was given)
    source: str
    page: int | None
    section: str | None
    start: int
    end: int
    text: str
    vector: np.ndarray
    safety: str | None = None  # JSON; None: not checked at ingest


@dataclass(frozen=True)
class DocumentRecord:
    """A document as a collection records it."""

    path: str
    source: str
    sha256: str
    pages: int
    chunks: int
    bytes: int
    mtime: float
    ingested_at: float


@dataclass(frozen=True)
class IndexStats:
    documents: int
    pages: int
    chunks: int
    vectors: int

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


Scored = list[tuple[int, float]]  # (chunk id, score), best first


class ChunkIndex(Protocol):
    """One collection. Writes are transactional per call; readers see whole documents or none."""

    model: str  # the embedding model its vectors come from
    dimension: int

    @property
    def generation(self) -> int:
        """A number that grows with every committed change."""

    def write(self, documents: Sequence[Document]) -> None:
        """Replace each document's chunks (or add a part of it), all in one transaction."""

    def remove(self, path: str) -> int:
        """Forget a document; returns how many chunks went."""

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Scored:
        """The k chunks nearest to `vector` by cosine (vectors are normalised)."""

    def keyword_search(self, query: str, k: int, filters: Filters | None = None) -> Scored:
        """The k best chunks for the query's words by BM25 (higher is better)."""

    def containing(self, phrase: str, filters: Filters | None = None, any_order: bool = False) -> list[int]:
        """Every chunk (not the top k) whose text may hold the phrase, in document order: the
        keyword index's candidates, a superset the caller checks against the text. `any_order`:
        every chunk whose text or section has a word starting with each of the phrase's words."""

    def structure(self, path: str) -> dict | None:
        """The document's section tree and page labels (JSON of docstack.ingest.structure)."""

    def get_state(self, kind: str, key: str) -> dict | None:
        """A stored JSON value: long jobs and their checkpointed results live here."""

    def put_state(self, kind: str, key: str, value: dict) -> None: ...

    def states(self, kind: str) -> dict[str, dict]:
        """All values of a kind, oldest update first."""

    def delete_state(self, kind: str, key: str | None = None) -> None:
        """Forget one value, or with no key all of a kind."""

    def state_kinds(self) -> list[str]:
        """The kinds that hold values (to copy them with the collection: reindex, migrate)."""

    def fetch(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """The chunks of `ids` that exist, with their vectors and stored verdicts, in one read."""

    def chunks(self, path: str) -> list[StoredChunk]:
        """A document's chunks in the order they were written (to copy a collection elsewhere)."""

    def documents(self) -> list[DocumentRecord]: ...

    def document(self, path: str) -> DocumentRecord | None: ...

    def path_with_hash(self, sha256: str) -> str | None:
        """A stored document with this content, if any (the same file under another name)."""

    def stats(self) -> IndexStats: ...

    def refresh(self) -> None:
        """Catch up with changes other processes committed."""

    def verify(self) -> list[str]:
        """Problems that would make search lie; empty when the collection is consistent."""

    def flush(self) -> None:
        """Make what was written cheap to open again (caches saved)."""

    def bulk(self) -> AbstractContextManager[None]:
        """Many writes ahead (a migrate, a first load): the index may leave its search structures
        to the end of the block and build them once. Searches in the meantime stay correct."""

    def size_bytes(self) -> int: ...

    def close(self) -> None: ...


class IndexBackend(Protocol):
    """Where a deployment's collections live."""

    def names(self) -> list[str]:
        """The collections, internal ones (a leading dot) left out."""

    def exists(self, name: str) -> bool: ...

    def open(self, name: str, model: str, dimension: int) -> ChunkIndex:
        """The collection, created if missing; DocstackError if it was built with another model."""

    def delete(self, name: str) -> None: ...

    def replace(self, name: str, staging: str) -> None:
        """Put collection `staging` in the place of `name` (a rebuilt index goes live at once)."""

    def document_paths(self, name: str) -> list[str]:
        """The files a collection was built from, read without opening it (any embedding model)."""
