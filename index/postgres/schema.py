"""The PostgreSQL schema: versioned migrations of the shared tables, and each collection's tables.

The shared tables are `docstack_schema_version` (which migrations ran) and `docstack_collections`
(one row per collection: its model, its tables' number, its generation and the counts BM25 needs).
Each collection has its own tables, `docstack_chunks_<n>`, `docstack_documents_<n>` and
`docstack_terms_<n>` (each word's document frequency): a
`vector(dim)` column takes an HNSW index only at a fixed dimension, and collections differ in it.
Migrations are an ordered list; each runs in its own transaction under an advisory lock, so two
processes opening the same database at once apply it once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from docstack.console import DocstackError

# pg_advisory_lock keys: any fixed numbers, docstack's own.
SCHEMA_LOCK = 0x646F6373  # "docs"

# Migration n (counting from 1) is MIGRATIONS[n - 1]; append, never edit one that shipped.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE docstack_collections (
            name text PRIMARY KEY,
            id bigint NOT NULL UNIQUE,  -- its tables are docstack_chunks_<id>, docstack_documents_<id>
            model text NOT NULL,
            dimension integer NOT NULL,
            language text NOT NULL,  -- the text search configuration of its keyword index
            generation bigint NOT NULL DEFAULT 0,
            chunk_count bigint NOT NULL DEFAULT 0,  -- BM25's N and average length, kept by each write
            word_count bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
        "CREATE SEQUENCE docstack_collection_ids",
        # Words a tsvector counts (stopwords left out): BM25's document length.
        """CREATE FUNCTION docstack_words(tsvector) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
           AS $$ SELECT coalesce(sum(cardinality(positions)), 0)::integer FROM unnest($1) $$""",
    ],
    [
        # A document's section tree and page labels (docstack.ingest.structure), and long jobs with
        # their checkpointed results (docstack.analysis), per collection by its tables' number.
        """CREATE TABLE docstack_structures (
            collection bigint NOT NULL, path text NOT NULL, structure jsonb NOT NULL,
            PRIMARY KEY (collection, path)
        )""",
        """CREATE TABLE docstack_state (
            collection bigint NOT NULL, kind text NOT NULL, key text NOT NULL, value jsonb NOT NULL,
            updated double precision NOT NULL,
            PRIMARY KEY (collection, kind, key)
        )""",
    ],
]


def latest() -> int:
    return len(MIGRATIONS)


def ensure_pgvector(conn: psycopg.Connection, where: str) -> None:
    """Enable pgvector in the database, or say in one line what the server lacks."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
        raise DocstackError(f"the PostgreSQL server at {where} has no pgvector extension; install pgvector there "
                            f"(e.g. apt install postgresql-<version>-pgvector) or use a server that has it")
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege:
        raise DocstackError(f"pgvector is not enabled in the database at {where} and this user may not enable it; "
                            f"run `CREATE EXTENSION vector;` there as a superuser") from None


def migrate(conn: psycopg.Connection, where: str) -> int:
    """Bring the shared tables to the latest schema; returns the version they are at."""
    conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS docstack_schema_version "
                     "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        current = version(conn)
        if current > latest():
            raise DocstackError(f"the index database at {where} has schema {current}, this docstack knows up to "
                                f"{latest()}; upgrade docstack")
        for number in range(current + 1, latest() + 1):
            with conn.transaction():
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO docstack_schema_version (version) VALUES (%s)", (number,))
        return latest()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def version(conn: psycopg.Connection) -> int:
    (number,) = conn.execute("SELECT coalesce(max(version), 0) FROM docstack_schema_version").fetchone()
    return number


def chunks_table(table_id: int) -> sql.Identifier:
    return sql.Identifier(f"docstack_chunks_{table_id}")


def documents_table(table_id: int) -> sql.Identifier:
    return sql.Identifier(f"docstack_documents_{table_id}")


def terms_table(table_id: int) -> sql.Identifier:
    return sql.Identifier(f"docstack_terms_{table_id}")


def vector_index_name(table_id: int) -> str:
    """The HNSW index's name: the one PostgreSQL gave it unnamed (table_column_idx), so collections
    made before it was named explicitly have it too."""
    return f"docstack_chunks_{table_id}_embedding_idx"


def create_vector_index(conn: psycopg.Connection, table_id: int, m: int, ef_construction: int) -> None:
    """The HNSW index by cosine; built in one pass over the table (in parallel, as
    max_parallel_maintenance_workers allows) when the table is already full."""
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_cosine_ops) "
                         "WITH (m = {}, ef_construction = {})").format(
        sql.Identifier(vector_index_name(table_id)), chunks_table(table_id), sql.Literal(m),
        sql.Literal(ef_construction)))


def vector_index_definition(conn: psycopg.Connection, table_id: int) -> str | None:
    """The HNSW index's CREATE INDEX statement as PostgreSQL keeps it; None while it is missing."""
    row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (vector_index_name(table_id),)).fetchone()
    return row[0] if row else None


def ensure_vector_index(conn: psycopg.Connection, table_id: int, m: int, ef_construction: int) -> None:
    """Build the HNSW index if a bulk load was killed before it could (`PostgresIndex.bulk`), unless
    a bulk load is under way now: it holds the lock, and builds the index when it ends."""
    if vector_index_definition(conn, table_id) is not None:
        return
    with bulk_lock(conn, table_id, wait=False) as taken:
        if taken:
            create_vector_index(conn, table_id, m, ef_construction)


@contextmanager
def bulk_lock(conn: psycopg.Connection, table_id: int, wait: bool = True) -> Iterator[bool]:
    """The session lock a bulk load of the collection holds, taken on `conn` for the block (or,
    without `wait`, only if it is free); yields whether it was taken."""
    key = f"docstack-bulk:{table_id}"
    if wait:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        taken = True
    else:
        taken = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def create_collection_tables(conn: psycopg.Connection, table_id: int, dimension: int, language: str,
                             m: int, ef_construction: int) -> None:
    """A collection's tables and indexes. The keyword index is a tsvector generated from the
    section and text (what SQLite's FTS5 indexes), so no write can leave it behind."""
    words = sql.SQL("to_tsvector({}::regconfig, coalesce(section, '') || ' ' || text)").format(sql.Literal(language))
    names = {"chunks": chunks_table(table_id), "documents": documents_table(table_id), "terms": terms_table(table_id),
             "words": words,
             "dim": sql.Literal(dimension)}
    statements = [
        """CREATE TABLE {documents} (
            path text PRIMARY KEY,
            source text NOT NULL,
            sha256 text NOT NULL,
            pages integer NOT NULL,
            chunks integer NOT NULL,
            bytes bigint NOT NULL,
            mtime double precision NOT NULL,
            ingested_at double precision NOT NULL,
            owner text,  -- access control, for the enterprise work: unused by search so far
            read_teams text[],
            write_teams text[]
        )""",
        "CREATE INDEX ON {documents} (sha256)",
        """CREATE TABLE {chunks} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused
            path text NOT NULL,
            source text NOT NULL,
            page integer,
            section text,
            start integer NOT NULL,
            "end" integer NOT NULL,
            text text NOT NULL,
            hash text NOT NULL,  -- sha256 of the text: the same passage is recognisable across files
            embedding vector({dim}) NOT NULL,
            safety text,  -- the context shield's verdict at ingest (JSON); NULL: not checked
            owner text,
            read_teams text[],
            write_teams text[],
            tsv tsvector GENERATED ALWAYS AS ({words}) STORED,
            words integer GENERATED ALWAYS AS (docstack_words({words})) STORED
        )""",
        # How many chunks hold each word (BM25's document frequency), kept by every write in its
        # transaction, as FTS5 keeps it: counting them at search time visits every such chunk.
        "CREATE TABLE {terms} (lexeme text PRIMARY KEY, chunks integer NOT NULL)",
        "CREATE INDEX ON {chunks} (path)",
        "CREATE INDEX ON {chunks} (source, page)",  # filters are counted from it alone
        "CREATE INDEX ON {chunks} USING gin (tsv)",
    ]
    for statement in statements:
        conn.execute(sql.SQL(statement).format(**names))
    create_vector_index(conn, table_id, m, ef_construction)


def drop_collection_tables(conn: psycopg.Connection, table_id: int) -> None:
    conn.execute("DELETE FROM docstack_structures WHERE collection = %s", (table_id,))
    conn.execute("DELETE FROM docstack_state WHERE collection = %s", (table_id,))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}, {}").format(chunks_table(table_id), documents_table(table_id),
                                                                    terms_table(table_id)))
