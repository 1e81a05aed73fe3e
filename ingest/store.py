"""A collection on disk: chunk metadata, vectors and a keyword index in SQLite, and a FAISS index.

SQLite (WAL) is the source of truth: one transaction writes a document's chunks, their vectors,
their FTS5 rows and a new generation number. The FAISS file is named after the generation it
matches and is written with a rename after the commit, so a crash at any point leaves either
the old pair or a newer SQLite whose FAISS file is missing, which is rebuilt from the stored
vectors on the next open. Every FAISS id is a chunk row id."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from docstack.console import DocstackError
from docstack.ingest.chunker import Chunk

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    page INTEGER,
    section TEXT,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks(path);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, section, content='chunks', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, section) VALUES (new.id, new.text, new.section);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, section) VALUES ('delete', old.id, old.text, old.section);
END;
"""


@dataclass(frozen=True)
class Document:
    """A file's chunks ready to store. `path` (resolved) identifies it; `source` is how it was named."""

    path: str
    source: str
    sha256: str
    pages: int
    bytes: int
    chunks: Sequence[Chunk]
    vectors: np.ndarray


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: int
    source: str
    page: int | None
    section: str | None
    start: int
    end: int
    text: str


class ChunkStore:
    DB = "chunks.sqlite"
    SCHEMA_VERSION = "1"

    def __init__(self, path: Path, model: str, dimension: int):
        self.path = path
        self.model = model
        self.dimension = dimension
        path.mkdir(parents=True, exist_ok=True)
        # The web app shares one store across script threads; writes are serialised below.
        self.db = sqlite3.connect(path / self.DB, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._check_model()
        self.index = self._load_index()

    @classmethod
    def exists(cls, path: Path) -> bool:
        return (path / cls.DB).is_file()

    # -- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.index.ntotal == 0:
            return []
        scores, ids = self.index.search(vector.reshape(1, -1).astype(np.float32), min(k, self.index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def keyword_search(self, query: str, k: int) -> list[tuple[int, float]]:
        terms = [t for t in "".join(c if c.isalnum() else " " for c in query).split() if t]
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = self.db.execute(
            "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY 2 LIMIT ?",
            (match, k),
        ).fetchall()
        return [(int(r), -float(s)) for r, s in rows]

    def get(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT id, source, page, section, start, end, text FROM chunks WHERE id IN ({marks})", list(ids)
        )
        return {row[0]: StoredChunk(*row) for row in rows}

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored embeddings of `ids`, in that order."""
        marks = ",".join("?" * len(ids))
        rows = dict(self.db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", list(ids)))
        return np.vstack([np.frombuffer(rows[i], dtype=np.float32) for i in ids])

    def document_hash(self, path: str) -> str | None:
        row = self.db.execute("SELECT sha256 FROM documents WHERE path = ?", (path,)).fetchone()
        return row[0] if row else None

    def documents(self) -> list[dict]:
        cursor = self.db.execute(
            "SELECT path, source, pages, chunks, bytes, ingested_at FROM documents ORDER BY path"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def stats(self) -> dict:
        docs, pages, chunks = self.db.execute(
            "SELECT count(*), coalesce(sum(pages), 0), coalesce(sum(chunks), 0) FROM documents"
        ).fetchone()
        return {"documents": docs, "pages": pages, "chunks": chunks, "vectors": self.index.ntotal}

    # -- writing -------------------------------------------------------------------------
    def write(self, documents: Sequence[Document]) -> None:
        """Replace each document's chunks in one transaction, then persist FAISS."""
        with self._writer():
            removed: list[int] = []
            added_ids: list[int] = []
            added_vectors: list[np.ndarray] = []
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for doc in documents:
                    removed += self._delete(doc.path)
                    added_ids += self._insert(doc)
                    added_vectors.append(doc.vectors)
                generation = self._bump_generation()
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            if removed:
                self.index.remove_ids(np.asarray(removed, dtype=np.int64))
            if added_ids:
                self.index.add_with_ids(np.vstack(added_vectors), np.asarray(added_ids, dtype=np.int64))
            self._save_index(generation)
            self.generation = generation

    def remove(self, path: str) -> int:
        with self._writer():
            self.db.execute("BEGIN IMMEDIATE")
            removed = self._delete(path)
            generation = self._bump_generation()
            self.db.execute("COMMIT")
            if removed:
                self.index.remove_ids(np.asarray(removed, dtype=np.int64))
            self._save_index(generation)
            self.generation = generation
            return len(removed)

    def close(self) -> None:
        self.db.close()

    def _insert(self, doc: Document) -> list[int]:
        if len(doc.chunks) != len(doc.vectors):
            raise ValueError(f"{doc.source}: {len(doc.chunks)} chunks but {len(doc.vectors)} vectors")
        self.db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc.path, doc.source, doc.sha256, doc.pages, len(doc.chunks), doc.bytes, time.time()),
        )
        ids = []
        for chunk, vector in zip(doc.chunks, doc.vectors):
            cursor = self.db.execute(
                "INSERT INTO chunks (path, source, page, section, start, end, text, vector) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (doc.path, doc.source, chunk.page, chunk.section, chunk.start, chunk.end, chunk.text,
                 np.asarray(vector, dtype=np.float32).tobytes()),
            )
            ids.append(cursor.lastrowid)
        return ids

    def _delete(self, path: str) -> list[int]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE path = ?", (path,))]
        self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))
        self.db.execute("DELETE FROM documents WHERE path = ?", (path,))
        return ids

    # -- consistency ---------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _check_model(self) -> None:
        model, dim = self._meta("embedding_model"), self._meta("dimension")
        if model is None:
            self.db.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)",
                [("embedding_model", self.model), ("dimension", str(self.dimension)), ("generation", "0"),
                 ("schema", self.SCHEMA_VERSION)],
            )
        elif self._meta("schema") != self.SCHEMA_VERSION:
            raise DocstackError(
                f"{self.path} has storage schema {self._meta('schema')}, this docstack reads {self.SCHEMA_VERSION}; "
                f"re-ingest the collection"
            )
        elif (model, int(dim)) != (self.model, self.dimension):
            raise DocstackError(
                f"{self.path} was built with {model} ({dim}-d), not {self.model} ({self.dimension}-d); "
                f"use the same embedding model or run `docstack reindex`"
            )

    def _generation(self) -> int:
        return int(self._meta("generation") or 0)

    def _bump_generation(self) -> int:
        generation = self._generation() + 1
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
        return generation

    def _index_file(self, generation: int) -> Path:
        return self.path / f"index-{generation}.faiss"

    def _load_index(self) -> faiss.Index:
        generation = self.generation = self._generation()
        path = self._index_file(generation)
        if path.is_file():
            index = faiss.read_index(str(path))
            if index.ntotal == self._count():
                return index
            log.warning("%s does not match its metadata; rebuilding", path)
        index = self._rebuild()
        if generation and self._count():
            log.info("rebuilt the FAISS index of %s from stored vectors", self.path)
        return index

    def _count(self) -> int:
        return self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def _rebuild(self) -> faiss.Index:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        ids, vectors = [], []
        for row_id, blob in self.db.execute("SELECT id, vector FROM chunks"):
            ids.append(row_id)
            vectors.append(np.frombuffer(blob, dtype=np.float32))
        if ids:
            index.add_with_ids(np.vstack(vectors), np.asarray(ids, dtype=np.int64))
        return index

    def _save_index(self, generation: int) -> None:
        target = self._index_file(generation)
        tmp = target.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        for old in self.path.glob("index-*.faiss"):
            if old != target:
                old.unlink(missing_ok=True)

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One writer per collection at a time, across processes."""
        with self._lock, open(self.path / "write.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Another process may have written since we loaded; catch up before writing.
            if self._generation() != self.generation:
                self.index = self._load_index()
            yield
