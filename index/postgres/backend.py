"""Collections in one PostgreSQL database, each a `PostgresIndex`, sharing one connection pool.

Nothing connects until a collection is first asked for, so commands that never read the index
(`docstack up`, `down`) work while the database is down. The first connection enables pgvector
and runs the schema's migrations."""

from __future__ import annotations

import threading

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg_pool import ConnectionPool

from docstack.console import DocstackError
from docstack.index.postgres import schema
from docstack.index.postgres.config import PostgresIndexConfig
from docstack.index.postgres.store import CollectionRow, PostgresIndex

_ROW = "SELECT name, id, model, dimension, language, generation FROM docstack_collections WHERE name = %s"


class PostgresBackend:
    def __init__(self, config: PostgresIndexConfig):
        self.config = config
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                with self._connect() as conn:
                    schema.ensure_pgvector(conn, self.config.safe_dsn())
                    schema.migrate(conn, self.config.safe_dsn())
                self._pool = ConnectionPool(self.config.dsn, min_size=1, max_size=self.config.pool_size,
                                            kwargs={"autocommit": True, "connect_timeout": self.config.connect_timeout},
                                            configure=register_vector, name="docstack-index", open=True)
            return self._pool

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.config.dsn, autocommit=True, connect_timeout=self.config.connect_timeout)
        except psycopg.OperationalError as error:
            reason = (str(error).strip().splitlines() or ["no reason given"])[-1]
            raise DocstackError(f"cannot connect to PostgreSQL at {self.config.safe_dsn()} ({reason}); start the "
                                f"server or fix DOCSTACK_INDEX_URL") from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def names(self) -> list[str]:
        return [r[0] for r in self._read("SELECT name FROM docstack_collections WHERE left(name, 1) <> '.' "
                                         "ORDER BY name")]

    def exists(self, name: str) -> bool:
        return bool(self._read("SELECT 1 FROM docstack_collections WHERE name = %s", (name,)))

    def open(self, name: str, model: str, dimension: int) -> PostgresIndex:
        rows = self._read(_ROW, (name,)) or self._create(name, model, dimension)
        row = CollectionRow(*rows[0])
        if (row.model, row.dimension) != (model, dimension):
            raise DocstackError(f"collection '{name}' in {self.config.safe_dsn()} was built with {row.model} "
                                f"({row.dimension}-d), not {model} ({dimension}-d); use the same embedding model "
                                f"or run `docstack reindex`")
        with self.pool.connection() as conn:
            schema.ensure_vector_index(conn, row.table_id, self.config.hnsw_m, self.config.hnsw_ef_construction)
        return PostgresIndex(self.pool, self.config, row)

    def _create(self, name: str, model: str, dimension: int) -> list[tuple]:
        """The collection's row and tables, in one transaction; another process creating it at the
        same moment waits on the name's lock and then finds it."""
        with self.pool.connection() as conn, conn.transaction():
            _lock_name(conn, name)
            rows = conn.execute(_ROW, (name,)).fetchall()
            if rows:
                return rows
            (table_id,) = conn.execute("SELECT nextval('docstack_collection_ids')").fetchone()
            schema.create_collection_tables(conn, table_id, dimension, self.config.text_language, self.config.hnsw_m,
                                            self.config.hnsw_ef_construction)
            conn.execute("INSERT INTO docstack_collections (name, id, model, dimension, language) "
                         "VALUES (%s, %s, %s, %s, %s)", (name, table_id, model, dimension, self.config.text_language))
            return conn.execute(_ROW, (name,)).fetchall()

    def delete(self, name: str) -> None:
        with self.pool.connection() as conn, conn.transaction():
            _lock_name(conn, name)
            for (table_id,) in conn.execute("DELETE FROM docstack_collections WHERE name = %s RETURNING id",
                                            (name,)).fetchall():
                schema.drop_collection_tables(conn, table_id)

    def replace(self, name: str, staging: str) -> None:
        """One transaction: readers see the old collection or the new one, never neither."""
        with self.pool.connection() as conn, conn.transaction():
            for lock in sorted((name, staging)):  # in a fixed order: two replaces cannot deadlock
                _lock_name(conn, lock)
            if not conn.execute("SELECT 1 FROM docstack_collections WHERE name = %s", (staging,)).fetchone():
                raise DocstackError(f"collection '{staging}' does not exist")
            for (table_id,) in conn.execute("DELETE FROM docstack_collections WHERE name = %s RETURNING id",
                                            (name,)).fetchall():
                schema.drop_collection_tables(conn, table_id)
            conn.execute("UPDATE docstack_collections SET name = %s WHERE name = %s", (name, staging))

    def document_paths(self, name: str) -> list[str]:
        rows = self._read("SELECT id FROM docstack_collections WHERE name = %s", (name,))
        if not rows:
            return []
        return [r[0] for r in self._read(sql.SQL("SELECT path FROM {} ORDER BY path").format(
            schema.documents_table(rows[0][0])))]

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            return schema.version(conn)

    def _read(self, query, args=None) -> list[tuple]:
        with self.pool.connection() as conn:
            return conn.execute(query, args).fetchall()


def _lock_name(conn: psycopg.Connection, name: str) -> None:
    """Until commit, no other transaction creates, deletes or replaces this collection."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"docstack-collection:{name}",))
