"""A collection in PostgreSQL: chunks, their vectors (pgvector, HNSW by cosine) and a keyword
index (a generated tsvector column, GIN), scored by BM25 as SQLite's FTS5 scores it.

Every write is one transaction that also bumps the collection's generation in
`docstack_collections`; that row's lock makes writers of one collection take turns across
processes, and a writer killed midway leaves the last committed state. Readers see whole
documents or none (each statement reads one snapshot)."""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from docstack.console import DocstackError
from docstack.index.base import Document, DocumentRecord, Filters, IndexStats, Scored, StoredChunk
from docstack.index.keywords import KEYWORD_POSTINGS_BUDGET, query_terms, rarest_within_budget
from docstack.index.postgres.config import PostgresIndexConfig
from docstack.index.postgres.schema import (bulk_lock, chunks_table, create_vector_index, documents_table,
                                            terms_table, vector_index_definition, vector_index_name)

# FTS5's bm25() constants, so that both backends rank keyword hits alike.
BM25_K1 = 1.2
BM25_B = 0.75
# A filter that leaves at most this many chunks is searched exactly (as the SQLite backend does).
EXACT_FILTER_LIMIT = 20_000
# BM25 of the chunks holding any kept query word. Parameters: the average chunk length, the words
# (twice), their idf, the words as a tsquery, the filters' arguments, k. Each matching chunk's
# tsvector gives only the query's words, picked out in C (marked weight A, then filtered):
# unnesting the whole tsvector of every matching chunk cost most of the search.
_BM25 = (f"SELECT c.id, sum(q.idf * u.tf * {BM25_K1 + 1} / (u.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * c.words "
         "/ %s::float8))) AS score "
         "FROM {chunks} c CROSS JOIN LATERAL (SELECT lexeme, cardinality(positions) AS tf "
         "FROM unnest(ts_filter(setweight(c.tsv, 'A', %s::text[]), '{{a}}'))) u "
         "JOIN unnest(%s::text[], %s::float8[]) AS q(lexeme, idf) ON q.lexeme = u.lexeme "
         "WHERE c.tsv @@ %s::tsquery {filters} GROUP BY c.id ORDER BY score DESC, c.id LIMIT %s")
_DOCUMENT_COLUMNS = sql.SQL("path, source, sha256, pages, chunks, bytes, mtime, ingested_at")
_CHUNK_COLUMNS = sql.SQL('path, source, page, section, start, "end", text, hash, embedding, safety')
_CHUNK_TYPES = ["text", "text", "int4", "text", "int4", "int4", "text", "text", "vector", "text"]


@dataclass(frozen=True)
class CollectionRow:
    """A collection's row in `docstack_collections`."""

    name: str
    table_id: int
    model: str
    dimension: int
    language: str
    generation: int


class PostgresIndex:
    """One collection (see the module). Handles share their backend's connection pool."""

    def __init__(self, pool: ConnectionPool, config: PostgresIndexConfig, row: CollectionRow):
        self._pool = pool
        self._config = config
        self.name = row.name
        self.model = row.model
        self.dimension = row.dimension
        self._bind(row)

    def _bind(self, row: CollectionRow) -> None:
        self._table_id = row.table_id
        self._language = row.language
        self._generation = row.generation
        self._chunks = chunks_table(row.table_id)
        self._documents = documents_table(row.table_id)
        self._terms = terms_table(row.table_id)

    @property
    def generation(self) -> int:
        return self._generation

    # -- reading -------------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Scored:
        """Nearest chunks by cosine through the HNSW index. A filter that leaves at most
        EXACT_FILTER_LIMIT chunks is searched exactly over them (an approximate scan could stop
        short of k); a looser one through pgvector's iterative scan, until k chunks pass it."""
        where, args = _where(filters)
        vector = np.asarray(vector, dtype=np.float32)
        with self._pool.connection() as conn, conn.transaction():
            if filters and self._at_most(conn, where, args, EXACT_FILTER_LIMIT):
                # MATERIALIZED: the planner may not push the ordering into the HNSW index.
                query = sql.SQL("WITH passing AS MATERIALIZED (SELECT id, embedding FROM {} {}) "
                                "SELECT id, 1 - (embedding <=> %s) FROM passing ORDER BY embedding <=> %s, id "
                                "LIMIT %s").format(self._chunks, where)
                rows = conn.execute(query, [*args, vector, vector, k]).fetchall()
            else:
                # ef_search bounds what one HNSW scan returns: at least k.
                ef_search = min(1000, max(self._config.hnsw_ef_search, k))
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                             "set_config('hnsw.iterative_scan', %s, true)",
                             (str(ef_search), "strict_order" if filters else "off"))
                query = sql.SQL("SELECT id, 1 - (embedding <=> %s) FROM {} {} ORDER BY embedding <=> %s "
                                "LIMIT %s").format(self._chunks, where)
                rows = conn.execute(query, [vector, *args, vector, k]).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _at_most(self, conn, where: sql.Composable, args: list, limit: int) -> bool:
        """Whether at most `limit` chunks pass the filter (counting stops past it)."""
        (count,) = conn.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} {} LIMIT %s) passing").format(
            self._chunks, where), [*args, limit + 1]).fetchone()
        return count <= limit

    def keyword_search(self, query: str, k: int, filters: Filters | None = None) -> Scored:
        """BM25 (FTS5's formula and constants) over the stemmed words of section and text; any query
        word but a stopword may match; the commonest are left out past KEYWORD_POSTINGS_BUDGET."""
        terms = query_terms(query)
        if not terms:
            return []
        with self._pool.connection() as conn:
            counts, total, words = self._term_counts(conn, " ".join(terms))
            kept = rarest_within_budget(counts, KEYWORD_POSTINGS_BUDGET) if counts else []
            if not kept:
                return []
            idf = [_idf(total, counts[t]) for t in kept]
            where, args = _where(filters, prefix="AND")
            rows = conn.execute(sql.SQL(_BM25).format(chunks=self._chunks, filters=where),
                                [max(words / max(total, 1), 1e-9), kept, kept, idf,
                                 " | ".join(_tsquery_literal(t) for t in kept), *args, k]).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _term_counts(self, conn, text: str) -> tuple[dict[str, int], int, int]:
        """The text's lexemes (as the collection's language stems them) -> chunks holding each, with
        the collection's chunks and words: read in one statement, so from one snapshot."""
        lexemes = [r[0] for r in conn.execute("SELECT DISTINCT lexeme FROM unnest(to_tsvector(%s::regconfig, %s))",
                                              (self._language, text))]
        if not lexemes:
            return {}, 0, 0
        rows = conn.execute(sql.SQL(
            "SELECT q.lexeme, coalesce(t.chunks, 0), k.chunk_count, k.word_count FROM unnest(%s::text[]) AS q(lexeme) "
            "LEFT JOIN {} t ON t.lexeme = q.lexeme "
            "CROSS JOIN (SELECT chunk_count, word_count FROM docstack_collections WHERE id = %s) k").format(
                self._terms), (lexemes, self._table_id)).fetchall()
        if not rows:
            return {}, 0, 0
        return {r[0]: r[1] for r in rows}, rows[0][2], rows[0][3]

    def containing(self, phrase: str, filters: Filters | None = None, any_order: bool = False) -> list[int]:
        """Every chunk whose keyword index holds the phrase (phraseto_tsquery, stemmed: a
        superset the caller checks), in document order; a phrase of stopwords only is looked for
        in the text itself."""
        where, args = _where(filters, prefix="AND")
        query = sql.SQL("SELECT id FROM {} WHERE CASE WHEN numnode(phraseto_tsquery({lang}::regconfig, %s)) > 0 "
                        "THEN tsv @@ phraseto_tsquery({lang}::regconfig, %s) ELSE text ILIKE %s END {} "
                        "ORDER BY id").format(self._chunks, where, lang=sql.Literal(self._language))
        like = "%" + phrase.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        words = " ".join("".join(c if c.isalnum() else " " for c in phrase).split())  # as FTS5 splits it
        if not words:
            return []
        if any_order:
            prefixes = " & ".join(f"{_tsquery_literal(w)}:*" for w in words.split())
            query = sql.SQL("SELECT id FROM {} WHERE tsv @@ to_tsquery({lang}::regconfig, %s) {} ORDER BY id").format(
                self._chunks, where, lang=sql.Literal(self._language))
            return [r[0] for r in self._read(query, [prefixes, *args])]
        return [r[0] for r in self._read(query, [words, words, like, *args])]

    def structure(self, path: str) -> dict | None:
        rows = self._read("SELECT structure FROM docstack_structures WHERE collection = %s AND path = %s",
                          (self._table_id, path))
        return rows[0][0] if rows else None

    def get_state(self, kind: str, key: str) -> dict | None:
        rows = self._read("SELECT value FROM docstack_state WHERE collection = %s AND kind = %s AND key = %s",
                          (self._table_id, kind, key))
        return rows[0][0] if rows else None

    def put_state(self, kind: str, key: str, value: dict) -> None:
        with self._pool.connection() as conn:
            conn.execute("INSERT INTO docstack_state VALUES (%s, %s, %s, %s, %s) ON CONFLICT (collection, kind, key) "
                         "DO UPDATE SET value = EXCLUDED.value, updated = EXCLUDED.updated",
                         (self._table_id, kind, key, Jsonb(value), time.time()))

    def states(self, kind: str) -> dict[str, dict]:
        rows = self._read("SELECT key, value FROM docstack_state WHERE collection = %s AND kind = %s ORDER BY updated",
                          (self._table_id, kind))
        return dict(rows)

    def delete_state(self, kind: str, key: str | None = None) -> None:
        with self._pool.connection() as conn:
            if key is None:
                conn.execute("DELETE FROM docstack_state WHERE collection = %s AND kind = %s", (self._table_id, kind))
            else:
                conn.execute("DELETE FROM docstack_state WHERE collection = %s AND kind = %s AND key = %s",
                             (self._table_id, kind, key))

    def state_kinds(self) -> list[str]:
        rows = self._read("SELECT DISTINCT kind FROM docstack_state WHERE collection = %s ORDER BY kind",
                          (self._table_id,))
        return [r[0] for r in rows]

    def fetch(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        return {c.chunk_id: c for c in self._stored(sql.SQL("id = ANY(%s)"), ids)}

    def chunks(self, path: str) -> list[StoredChunk]:
        return self._stored(sql.SQL("path = %s ORDER BY id"), path)

    def _stored(self, condition: sql.Composable, arg) -> list[StoredChunk]:
        """Chunks with their vectors, read in binary (vectors come as float32 without parsing text)."""
        with self._pool.connection() as conn, conn.cursor(binary=True) as cur:
            cur.execute(sql.SQL('SELECT id, path, source, page, section, start, "end", text, embedding, safety '
                                "FROM {} WHERE {}").format(self._chunks, condition), (arg,))
            return [StoredChunk(*row[:8], row[8].to_numpy().astype(np.float32), row[9]) for row in cur]

    def document(self, path: str) -> DocumentRecord | None:
        rows = self._read(sql.SQL("SELECT {} FROM {} WHERE path = %s").format(_DOCUMENT_COLUMNS, self._documents),
                          (path,))
        return DocumentRecord(*rows[0]) if rows else None

    def path_with_hash(self, sha256: str) -> str | None:
        rows = self._read(sql.SQL("SELECT path FROM {} WHERE sha256 = %s LIMIT 1").format(self._documents), (sha256,))
        return rows[0][0] if rows else None

    def documents(self) -> list[DocumentRecord]:
        rows = self._read(sql.SQL("SELECT {} FROM {} ORDER BY path").format(_DOCUMENT_COLUMNS, self._documents))
        return [DocumentRecord(*row) for row in rows]

    def stats(self) -> IndexStats:
        [(docs, pages, chunks, vectors)] = self._read(sql.SQL(
            "SELECT count(*), coalesce(sum(pages), 0), coalesce(sum(chunks), 0), "
            "(SELECT chunk_count FROM docstack_collections WHERE id = %s) FROM {}").format(self._documents),
            (self._table_id,))
        return IndexStats(docs, int(pages), int(chunks), int(vectors or 0))

    def size_bytes(self) -> int:
        """Disk space of the collection's tables with their indexes (HNSW, GIN) and TOAST."""
        [(size,)] = self._read("SELECT pg_total_relation_size(%s::regclass) + pg_total_relation_size(%s::regclass)",
                               (self._chunks.as_string(), self._documents.as_string()))
        return int(size)

    def refresh(self) -> None:
        """Read the generation again; follow the name if the collection was replaced (reindexed)."""
        rows = self._read("SELECT name, id, model, dimension, language, generation FROM docstack_collections "
                          "WHERE name = %s", (self.name,))
        if not rows:
            return  # deleted: reads find nothing, a write says so
        row = CollectionRow(*rows[0])
        if (row.model, row.dimension) != (self.model, self.dimension):
            raise DocstackError(f"collection '{self.name}' was rebuilt with {row.model} ({row.dimension}-d) "
                                f"meanwhile; open it again")
        self._bind(row)

    def verify(self) -> list[str]:
        """Problems that would make search lie; an empty list means the collection is consistent."""
        problems = [f"{path}: {recorded} chunks recorded, {actual} stored" for path, recorded, actual in self._read(
            sql.SQL("SELECT d.path, d.chunks, count(c.id) FROM {} d LEFT JOIN {} c ON c.path = d.path "
                    "GROUP BY d.path, d.chunks HAVING d.chunks != count(c.id)").format(self._documents, self._chunks))]
        [(chunks, words, counted_chunks, counted_words)] = self._read(sql.SQL(
            "SELECT (SELECT count(*) FROM {0}), (SELECT coalesce(sum(words), 0) FROM {0}), chunk_count, word_count "
            "FROM docstack_collections WHERE id = %s").format(self._chunks), (self._table_id,)) or [(0, 0, 0, 0)]
        if (chunks, words) != (counted_chunks, counted_words):
            problems.append(f"keyword statistics say {counted_chunks} chunks of {counted_words} words, "
                            f"the table has {chunks} of {words}")
        [(wrong,)] = self._read(sql.SQL(
            "SELECT count(*) FROM (SELECT u.lexeme, count(*) AS n FROM {0} c, unnest(c.tsv) u GROUP BY u.lexeme) a "
            "FULL JOIN (SELECT lexeme, chunks FROM {1} WHERE chunks <> 0) t USING (lexeme) "
            "WHERE a.n IS DISTINCT FROM t.chunks").format(self._chunks, self._terms))
        if wrong:
            problems.append(f"keyword statistics are wrong for {wrong} words")
        invalid = self._read("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass "
                             "AND NOT indisvalid", (self._chunks.as_string(),))
        problems += [f"index {name} is invalid (an interrupted build): REINDEX it" for (name,) in invalid]
        return problems

    def _read(self, query, args: Sequence | None = None) -> list[tuple]:
        with self._pool.connection() as conn:
            return conn.execute(query, args).fetchall()

    # -- writing -------------------------------------------------------------------------
    def write(self, documents: Sequence[Document]) -> None:
        """Replace each document's chunks (or add a part of it), all in one transaction."""
        for doc in documents:
            if len(doc.chunks) != len(doc.vectors):
                raise ValueError(f"{doc.source}: {len(doc.chunks)} chunks but {len(doc.vectors)} vectors")
        with self._pool.connection() as conn, conn.transaction():
            generation = self._next_generation(conn)
            chunks = words = 0
            for doc in documents:
                if doc.first:
                    gone, gone_words = self._delete(conn, doc.path)
                    chunks, words = chunks - gone, words - gone_words
                added, added_words = self._insert(conn, doc)
                chunks, words = chunks + added, words + added_words
            self._count(conn, chunks, words)
        self._generation = generation

    def remove(self, path: str) -> int:
        with self._pool.connection() as conn, conn.transaction():
            generation = self._next_generation(conn)
            gone, gone_words = self._delete(conn, path)
            self._count(conn, -gone, -gone_words)
        self._generation = generation
        return gone

    def flush(self) -> None:
        """VACUUM ANALYZE after a batch of writes: it empties the GIN index's pending list (until
        then every keyword search reads it whole: 2 ms a word at 100k chunks, 0.03 ms after) and
        refreshes the planner's statistics (HNSW or an exact scan, bitmap or sequential)."""
        with self._pool.connection() as conn:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}, {}").format(self._chunks, self._documents))

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Drop the HNSW index for the block and build it once at its end, in one parallel pass:
        inserting a million chunks into the graph one by one takes hours on 2 cores, the pass
        minutes (bench/bench_postgres.py). Searches meanwhile scan exactly: right, but slower. The
        session lock keeps other processes from building the index half-way; if this process is
        killed, the next one to open the collection builds it (`schema.ensure_vector_index`)."""
        with self._pool.connection() as conn, bulk_lock(conn, self._table_id):
            definition = vector_index_definition(conn, self._table_id)
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(vector_index_name(self._table_id))))
            try:
                yield
            finally:
                if definition:  # as it was built: the collection keeps its own m and ef_construction
                    conn.execute(definition)
                else:
                    create_vector_index(conn, self._table_id, self._config.hnsw_m, self._config.hnsw_ef_construction)

    def close(self) -> None:
        """Nothing to release: connections belong to the backend's pool."""

    def _next_generation(self, conn) -> int:
        """Bump the generation, holding the collection's row lock until commit: writers take turns."""
        row = conn.execute("UPDATE docstack_collections SET generation = generation + 1 WHERE id = %s "
                           "RETURNING generation", (self._table_id,)).fetchone()
        if row is None:
            raise DocstackError(f"collection '{self.name}' was deleted or replaced meanwhile; open it again")
        return row[0]

    def _count(self, conn, chunks: int, words: int) -> None:
        conn.execute("UPDATE docstack_collections SET chunk_count = chunk_count + %s, word_count = word_count + %s "
                     "WHERE id = %s", (chunks, words, self._table_id))

    def _insert(self, conn, doc: Document) -> tuple[int, int]:
        """COPY the document's chunks in; returns how many chunks and keyword-index words it added."""
        before = self._path_counts(conn, doc.path)
        # Writers take turns (the collection's row lock), so the ids past this one are this write's.
        (last,) = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(self._chunks)).fetchone()
        verdicts = doc.safety if doc.safety is not None else [None] * len(doc.chunks)
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT BINARY)").format(
                self._chunks, _CHUNK_COLUMNS)) as copy:
            copy.set_types(_CHUNK_TYPES)
            for chunk, vector, verdict in zip(doc.chunks, doc.vectors, verdicts):
                copy.write_row((doc.path, doc.source, chunk.page, chunk.section, chunk.start, chunk.end, chunk.text,
                                hashlib.sha256(chunk.text.encode("utf-8")).hexdigest(),
                                np.asarray(vector, dtype=np.float32), verdict))
        after = self._path_counts(conn, doc.path)
        conn.execute(sql.SQL("INSERT INTO {0} (lexeme, chunks) SELECT u.lexeme, count(*) FROM {1} c, unnest(c.tsv) u "
                             "WHERE c.id > %s GROUP BY u.lexeme "
                             "ON CONFLICT (lexeme) DO UPDATE SET chunks = {0}.chunks + EXCLUDED.chunks").format(
                                 self._terms, self._chunks), (last,))
        if doc.last:
            conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (path) DO "
                                 "UPDATE SET (source, sha256, pages, chunks, bytes, mtime, ingested_at) = "
                                 "(EXCLUDED.source, EXCLUDED.sha256, EXCLUDED.pages, EXCLUDED.chunks, EXCLUDED.bytes, "
                                 "EXCLUDED.mtime, EXCLUDED.ingested_at)").format(self._documents, _DOCUMENT_COLUMNS),
                         (doc.path, doc.source, doc.sha256, doc.pages, after[0], doc.bytes, doc.mtime, time.time()))
            if doc.structure is not None:
                conn.execute("INSERT INTO docstack_structures VALUES (%s, %s, %s) ON CONFLICT (collection, path) "
                             "DO UPDATE SET structure = EXCLUDED.structure", (self._table_id, doc.path,
                                                                              Jsonb(doc.structure)))
        return after[0] - before[0], after[1] - before[1]

    def _path_counts(self, conn, path: str) -> tuple[int, int]:
        row = conn.execute(sql.SQL("SELECT count(*), coalesce(sum(words), 0) FROM {} WHERE path = %s").format(
            self._chunks), (path,)).fetchone()
        return int(row[0]), int(row[1])

    def _delete(self, conn, path: str) -> tuple[int, int]:
        [(gone, words)] = conn.execute(sql.SQL(
            "WITH gone AS (DELETE FROM {0} WHERE path = %s RETURNING words, tsv), "
            "lost AS (SELECT u.lexeme, count(*) AS n FROM gone, unnest(gone.tsv) u GROUP BY u.lexeme), "
            "counted AS (UPDATE {1} t SET chunks = t.chunks - lost.n FROM lost WHERE t.lexeme = lost.lexeme) "
            "SELECT count(*), coalesce(sum(words), 0) FROM gone").format(self._chunks, self._terms),
            (path,)).fetchall()
        conn.execute(sql.SQL("DELETE FROM {} WHERE path = %s").format(self._documents), (path,))
        conn.execute("DELETE FROM docstack_structures WHERE collection = %s AND path = %s", (self._table_id, path))
        return int(gone), int(words)


def _idf(total: int, holding: int) -> float:
    """FTS5's idf: log((N - n + 0.5) / (n + 0.5)), and a tiny positive weight for words in more
    than half the chunks instead of a negative one."""
    value = math.log((max(total, holding) - holding + 0.5) / (holding + 0.5))
    return value if value > 0 else 1e-6


def _tsquery_literal(lexeme: str) -> str:
    """A lexeme as tsquery input reads it verbatim (quoted, not parsed or stemmed again)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _where(filters: Filters | None, prefix: str = "WHERE") -> tuple[sql.Composable, list]:
    """The filters as SQL: source a substring, or a glob with * ? [ (case-sensitive, as SQLite's
    GLOB); pages an inclusive range."""
    if not filters:
        return sql.SQL(""), []
    where, args = [], []
    if filters.source is not None:
        if any(c in filters.source for c in "*?["):
            where.append("source ~ %s")
            args.append(glob_regex(filters.source))
        else:
            where.append("strpos(source, %s) > 0")
            args.append(filters.source)
    if filters.pages is not None:
        where.append("page BETWEEN %s AND %s")
        args += list(filters.pages)
    return sql.SQL(f"{prefix} " + " AND ".join(where)), args


def glob_regex(glob: str) -> str:
    """SQLite's GLOB as a POSIX regular expression: * any text, ? one character, [...] a set
    ([^...] its complement), anchored at both ends."""
    out, i = ["^"], 0
    while i < len(glob):
        c = glob[i]
        end = glob.find("]", i + 2) if c == "[" else -1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and end != -1:
            inner = glob[i + 1 : end]
            out.append("[" + ("^" + inner[1:] if inner.startswith("^") else inner).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"
