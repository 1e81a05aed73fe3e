"""A collection on disk: chunk metadata, vectors and a keyword index in SQLite, and a FAISS index.

SQLite (WAL) is the source of truth: one transaction writes a document's chunks, their vectors,
their FTS5 rows and a new generation number. The FAISS index (see `vectors`) is a cache of
those vectors keyed by chunk id, saved now and then and reconciled with SQLite on open, so a
crash at any point leaves the last committed state, and every FAISS id has its row."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from docstack.console import DocstackError
from docstack.index.base import Document, DocumentRecord, Filters, IndexStats, Scored, StoredChunk
from docstack.index.keywords import KEYWORD_POSTINGS_BUDGET, query_terms, rarest_within_budget
from docstack.index.sqlite.vectors import VectorIndex

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
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_hash ON documents(sha256);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: FAISS reconciles by id
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    page INTEGER,
    section TEXT,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,  -- sha256 of the text: the same passage is recognisable across files
    vector BLOB NOT NULL,
    safety TEXT  -- the context shield's verdict at ingest (JSON, with its policy version); NULL: not checked
);
CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks(path);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, section, content='chunks', content_rowid='id');
-- A document's section tree and page labels (JSON, docstack.ingest.structure), kept with it.
CREATE TABLE IF NOT EXISTS structures (path TEXT PRIMARY KEY, structure TEXT NOT NULL);
-- Long jobs and their checkpointed results (docstack.analysis): kind, key -> JSON.
CREATE TABLE IF NOT EXISTS state (
    kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, section) VALUES (new.id, new.text, new.section);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, section) VALUES ('delete', old.id, old.text, old.section);
END;
"""


# The FAISS cache is saved once this many changes (or 10% of the index) are not in it.
SAVE_AFTER_CHANGES = 5_000
# Vectors are read from SQLite in batches of this many, to bound memory on large collections.
READ_BATCH = 10_000
# A filter that leaves at most this many chunks is searched exactly.
EXACT_FILTER_LIMIT = 20_000
_DOCUMENT_COLUMNS = "path, source, sha256, pages, chunks, bytes, mtime, ingested_at"


class SqliteIndex:
    """A collection in a folder: `chunks.sqlite` and `index-<generation>.faiss` (see the module)."""

    DB = "chunks.sqlite"
    SCHEMA_VERSION = "3"
    # Older schemas this version upgrades in place: schema -> statements.
    MIGRATIONS = {"2": ["ALTER TABLE chunks ADD COLUMN safety TEXT"]}

    def __init__(self, path: Path, model: str, dimension: int):
        self.path = path
        self.model = model
        self.dimension = dimension
        path.mkdir(parents=True, exist_ok=True)
        # The web app shares one store across script threads; writes are serialised below. Without
        # sqlite3's statement cache: threads running the same SQL at once shared one prepared
        # statement, and 50 concurrent searches failed ('bad parameter or other API misuse') or got
        # another thread's rows, 5-15 in 500 (issue 16). SQLite itself serialises the connection.
        self.db = sqlite3.connect(path / self.DB, timeout=30, isolation_level=None, check_same_thread=False,
                                  cached_statements=0)
        self._lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._check_model()
        self.index = self._load_index()
        self._filtered: tuple = (None, None)

    @classmethod
    def exists(cls, path: Path) -> bool:
        return (path / cls.DB).is_file()

    @classmethod
    def document_paths(cls, path: Path) -> list[str]:
        """The files a collection was built from, read without opening it (any embedding model)."""
        with sqlite3.connect(path / cls.DB) as db:
            return [row[0] for row in db.execute("SELECT path FROM documents ORDER BY path")]

    # -- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Scored:
        """Nearest chunks by cosine, among those the filters let through. A selective filter is
        searched exactly over its own vectors, which an approximate index could miss."""
        allowed = self._allowed(filters)
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            if len(allowed) == 0:
                return []
            scores = self._vectors(allowed) @ vector
            top = np.argsort(-scores)[:k]
            return [(int(allowed[i]), float(scores[i])) for i in top]
        return self.index.search(vector, k, allowed)

    def keyword_search(self, query: str, k: int, filters: Filters | None = None) -> Scored:
        """BM25 over the chunks' text and section (FTS5); any query word but a stopword may match."""
        allowed = self._allowed(filters)
        terms = query_terms(query)
        if not terms:
            return []
        terms = self._rarest_terms(terms)
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = self.db.execute(
            "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY 2 LIMIT ?",
            (match, k if allowed is None else max(k * 20, 1000)),
        ).fetchall()
        if allowed is not None:
            keep = set(allowed.tolist())
            rows = [row for row in rows if row[0] in keep][:k]
        return [(int(r), -float(s)) for r, s in rows]

    def _rarest_terms(self, terms: list[str]) -> list[str]:
        """The query words FTS5 can score within KEYWORD_POSTINGS_BUDGET: rarest first, always one.

        FTS5 scores every chunk that has any query word, about 1.6 µs each here, so a word found in
        most chunks of a large collection costs seconds while its BM25 weight is near nothing."""
        self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, row)")
        lowered = [t.lower() for t in terms]
        marks = ",".join("?" * len(lowered))
        counts = dict(self.db.execute(f"SELECT term, doc FROM temp.chunks_vocab WHERE term IN ({marks})", lowered))
        return rarest_within_budget({t: counts.get(t.lower(), 0) for t in terms}, KEYWORD_POSTINGS_BUDGET)

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        """Ids of the chunks the filters let through (None: no filter). Remembered per generation:
        a hybrid search asks twice."""
        if not filters:
            return None
        key = (filters, self.generation)
        if self._filtered[0] != key:
            self._filtered = (key, self._filter_ids(filters))
        return self._filtered[1]

    def _filter_ids(self, filters: Filters) -> np.ndarray:
        """Chunks whose source matches (substring, or glob with * ? [) and whose page is in range."""
        where, args = [], []
        if filters.source is not None:
            glob = any(c in filters.source for c in "*?[")
            where.append("source GLOB ?" if glob else "instr(source, ?) > 0")
            args.append(filters.source)
        if filters.pages is not None:
            where.append("page BETWEEN ? AND ?")
            args += list(filters.pages)
        sql = "SELECT id FROM chunks" + (" WHERE " + " AND ".join(where) if where else "")
        return np.fromiter((r[0] for r in self.db.execute(sql, args)), dtype=np.int64)

    def containing(self, phrase: str, filters: Filters | None = None, any_order: bool = False) -> list[int]:
        """Every chunk whose text holds the phrase's words in a row (FTS5 phrase query), or with
        `any_order` every chunk whose text or section holds words starting with each of them, in
        document order; the caller checks the text."""
        words = "".join(c if c.isalnum() else " " for c in phrase).split()
        if not words:
            return []
        query = " AND ".join(f'"{w}"*' for w in words) if any_order else 'text : "' + " ".join(words) + '"'
        ids = [r[0] for r in self.db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rowid",
                                               (query,))]
        allowed = self._allowed(filters)
        if allowed is not None:
            keep = set(allowed.tolist())
            ids = [i for i in ids if i in keep]
        return ids

    def structure(self, path: str) -> dict | None:
        row = self.db.execute("SELECT structure FROM structures WHERE path = ?", (path,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_state(self, kind: str, key: str) -> dict | None:
        row = self.db.execute("SELECT value FROM state WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put_state(self, kind: str, key: str, value: dict) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)",
                            (kind, key, json.dumps(value), time.time()))

    def states(self, kind: str) -> dict[str, dict]:
        rows = self.db.execute("SELECT key, value FROM state WHERE kind = ? ORDER BY updated", (kind,))
        return {key: json.loads(value) for key, value in rows}

    def delete_state(self, kind: str, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self.db.execute("DELETE FROM state WHERE kind = ?", (kind,))
            else:
                self.db.execute("DELETE FROM state WHERE kind = ? AND key = ?", (kind, key))

    def state_kinds(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT kind FROM state ORDER BY kind")]

    def fetch(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        return {row[0]: StoredChunk(*row[:8], np.frombuffer(row[8], dtype=np.float32), row[9])
                for row in self._rows("id, path, source, page, section, start, end, text, vector, safety", ids)}

    def chunks(self, path: str) -> list[StoredChunk]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE path = ? ORDER BY id", (path,))]
        stored = self.fetch(ids)
        return [stored[i] for i in ids if i in stored]

    def _vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored embeddings of `ids`, in that order."""
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = dict(self._rows("id, vector", ids))
        return np.vstack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids])

    def _rows(self, columns: str, ids: Sequence[int]) -> Iterator[tuple]:
        """`columns` of the chunks with these ids (those that exist), read 900 ids at a time:
        SQLite's bound-parameter limit."""
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            marks = ",".join("?" * len(part))
            yield from self.db.execute(f"SELECT {columns} FROM chunks WHERE id IN ({marks})", part)

    def document(self, path: str) -> DocumentRecord | None:
        row = self.db.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE path = ?", (path,)).fetchone()
        return DocumentRecord(*row) if row else None

    def path_with_hash(self, sha256: str) -> str | None:
        row = self.db.execute("SELECT path FROM documents WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone()
        return row[0] if row else None

    def documents(self) -> list[DocumentRecord]:
        rows = self.db.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY path")
        return [DocumentRecord(*row) for row in rows]

    def stats(self) -> IndexStats:
        docs, pages, chunks = self.db.execute(
            "SELECT count(*), coalesce(sum(pages), 0), coalesce(sum(chunks), 0) FROM documents"
        ).fetchone()
        return IndexStats(docs, pages, chunks, len(self.index))

    def size_bytes(self) -> int:
        """Disk space: the SQLite database, its WAL and the vector index."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def refresh(self) -> None:
        """Catch up with writes made by other processes since this store was loaded."""
        with self._lock:
            if self._generation() != self.generation:
                self.index = self._load_index()

    def verify(self) -> list[str]:
        """Problems that would make search lie; an empty list means the collection is consistent."""
        problems = []
        stored = {r[0] for r in self.db.execute("SELECT id FROM chunks")}
        indexed = set(self.index.ids().tolist())
        if stored != indexed:
            problems.append(f"{len(indexed - stored)} vectors without a chunk, {len(stored - indexed)} chunks "
                            f"without a vector")
        # The FTS5 table reads its content from `chunks`, so count(*) on it counts chunks; the rows
        # really indexed are those of its docsize shadow table.
        (fts,) = self.db.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()
        if fts != len(stored):
            problems.append(f"keyword index has {fts} rows for {len(stored)} chunks")
        for path, recorded, actual in self.db.execute(
            "SELECT d.path, d.chunks, count(c.id) FROM documents d LEFT JOIN chunks c ON c.path = d.path "
            "GROUP BY d.path HAVING d.chunks != count(c.id)"
        ):
            problems.append(f"{path}: {recorded} chunks recorded, {actual} stored")
        return problems

    # -- writing -------------------------------------------------------------------------
    def write(self, documents: Sequence[Document]) -> None:
        """Replace each document's chunks in one transaction, then update the FAISS cache."""
        with self._writer():
            removed: list[int] = []
            added_ids: list[int] = []
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for doc in documents:
                    if doc.first:
                        removed += self._delete(doc.path)
                    added_ids += self._insert(doc)
                generation = self._bump_generation()
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.index.remove(np.asarray(removed, dtype=np.int64))
            if added_ids:
                self.index.add(np.asarray(added_ids, dtype=np.int64), np.vstack([d.vectors for d in documents]))
            self._committed(generation, len(removed) + len(added_ids))

    def remove(self, path: str) -> int:
        with self._writer():
            self.db.execute("BEGIN IMMEDIATE")
            removed = self._delete(path)
            generation = self._bump_generation()
            self.db.execute("COMMIT")
            self.index.remove(np.asarray(removed, dtype=np.int64))
            self._committed(generation, len(removed))
            return len(removed)

    def flush(self) -> None:
        """Save the FAISS cache now, so the next open need not reconcile."""
        with self._writer():
            if self._unsaved:
                self.index.save(self.path, self.generation)
                self._unsaved = 0

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Nothing to defer: FAISS takes vectors in as they come and is saved by `flush`."""
        yield

    def close(self) -> None:
        self.db.close()

    def _insert(self, doc: Document) -> list[int]:
        if len(doc.chunks) != len(doc.vectors):
            raise ValueError(f"{doc.source}: {len(doc.chunks)} chunks but {len(doc.vectors)} vectors")
        ids = []
        verdicts = doc.safety if doc.safety is not None else [None] * len(doc.chunks)
        for chunk, vector, verdict in zip(doc.chunks, doc.vectors, verdicts):
            cursor = self.db.execute(
                "INSERT INTO chunks (path, source, page, section, start, end, text, hash, vector, safety) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc.path, doc.source, chunk.page, chunk.section, chunk.start, chunk.end, chunk.text,
                 hashlib.sha256(chunk.text.encode("utf-8")).hexdigest(),
                 np.asarray(vector, dtype=np.float32).tobytes(), verdict),
            )
            ids.append(cursor.lastrowid)
        if doc.last:
            (chunks,) = self.db.execute("SELECT count(*) FROM chunks WHERE path = ?", (doc.path,)).fetchone()
            self.db.execute(
                f"INSERT INTO documents ({_DOCUMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (doc.path, doc.source, doc.sha256, doc.pages, chunks, doc.bytes, doc.mtime, time.time()),
            )
            if doc.structure is not None:
                self.db.execute("INSERT INTO structures VALUES (?, ?)", (doc.path, json.dumps(doc.structure)))
        return ids

    def _delete(self, path: str) -> list[int]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE path = ?", (path,))]
        self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))
        self.db.execute("DELETE FROM documents WHERE path = ?", (path,))
        self.db.execute("DELETE FROM structures WHERE path = ?", (path,))
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
        elif self._meta("schema") in self.MIGRATIONS:
            self._migrate()
        if self._meta("schema") != self.SCHEMA_VERSION:
            raise DocstackError(
                f"{self.path} has storage schema {self._meta('schema')}, this docstack reads {self.SCHEMA_VERSION}; "
                f"re-ingest the collection"
            )
        if model is not None and (model, int(dim)) != (self.model, self.dimension):
            raise DocstackError(
                f"{self.path} was built with {model} ({dim}-d), not {self.model} ({self.dimension}-d); "
                f"use the same embedding model or run `docstack reindex`"
            )

    def _migrate(self) -> None:
        """Upgrade an older schema in place, one transaction per step; the data stays."""
        with self._lock, open(self.path / "write.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            while (schema := self._meta("schema")) in self.MIGRATIONS:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    if self._meta("schema") == schema:  # another process may have done it meanwhile
                        for statement in self.MIGRATIONS[schema]:
                            self.db.execute(statement)
                        self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(int(schema) + 1),))
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                log.info("%s: storage schema %s upgraded to %s", self.path, schema, self._meta("schema"))

    def _generation(self) -> int:
        return int(self._meta("generation") or 0)

    def _bump_generation(self) -> int:
        generation = self._generation() + 1
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
        return generation

    def _load_index(self) -> VectorIndex:
        """The cached FAISS index brought in line with SQLite."""
        self.generation = self._generation()
        index, saved = VectorIndex.load(self.path, self.dimension)
        index.trained_size = int(self._meta("ivf_trained") or index.trained_size)
        self._unsaved = 0
        if saved != self.generation:
            stored = np.fromiter((r[0] for r in self.db.execute("SELECT id FROM chunks")), dtype=np.int64)
            cached = index.ids()
            stale, missing = np.setdiff1d(cached, stored), np.setdiff1d(stored, cached)
            index.remove(stale)
            for start in range(0, len(missing), READ_BATCH):
                part = missing[start : start + READ_BATCH]
                index.add(part, self._vectors(part))
            self._unsaved = len(stale) + len(missing)
            if self._unsaved and saved >= 0:
                log.info("%s: applied %d changes to the FAISS cache", self.path, self._unsaved)
        if index.needs_rebuild():
            index = self._rebuilt(index)
        return index

    def _rebuilt(self, index: VectorIndex) -> VectorIndex:
        """A new index of the kind the collection's size calls for (flat or IVF), saved at once:
        building it is O(index), so no later open should have to do it again."""
        ids = index.ids()
        log.info("%s: rebuilding the vector index for %d chunks", self.path, len(ids))
        rebuilt = VectorIndex.build(self.dimension, ids, self._vectors(ids))
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('ivf_trained', ?)", (str(rebuilt.trained_size),))
        rebuilt.save(self.path, self.generation)
        self._unsaved = 0
        return rebuilt

    def _committed(self, generation: int, changes: int) -> None:
        self.generation = generation
        self._unsaved += changes
        if self.index.needs_rebuild():
            self.index = self._rebuilt(self.index)
        if self._unsaved >= max(SAVE_AFTER_CHANGES, len(self.index) // 10):
            self.index.save(self.path, generation)
            self._unsaved = 0

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One writer per collection at a time, across processes."""
        with self._lock, open(self.path / "write.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Another process may have written since we loaded; catch up before writing.
            if self._generation() != self.generation:  # another process wrote meanwhile
                self.index = self._load_index()
            yield
