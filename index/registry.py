"""Index backends by the scheme of `DOCSTACK_INDEX_URL` (sqlite://, postgresql://): the app asks
for an `IndexBackend` and never names a backend's classes."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from docstack.console import DocstackError
from docstack.index.base import IndexBackend
from docstack.settings import Settings


def _sqlite(settings: Settings) -> IndexBackend:
    from docstack.index.sqlite.backend import SqliteBackend
    from docstack.index.sqlite.config import SqliteIndexConfig

    return SqliteBackend(SqliteIndexConfig.from_url(settings.index_url, settings.collections_dir))


def _postgres(settings: Settings) -> IndexBackend:
    try:
        from docstack.index.postgres.backend import PostgresBackend
        from docstack.index.postgres.config import PostgresIndexConfig
    except ImportError as error:
        raise DocstackError(f"DOCSTACK_INDEX_URL names PostgreSQL but its client is not installed ({error.name}); "
                            f"pip install 'docstack[postgres]'") from None
    try:
        config = PostgresIndexConfig.from_url(
            settings.index_url, pool_size=settings.index_pool_size, text_language=settings.index_text_language,
            hnsw_m=settings.index_hnsw_m, hnsw_ef_construction=settings.index_hnsw_ef_construction,
            hnsw_ef_search=settings.index_hnsw_ef_search)
    except ValidationError as error:
        first = error.errors()[0]
        raise DocstackError(f"DOCSTACK_INDEX_{str(first['loc'][0]).upper()}: {first['msg']}") from None
    return PostgresBackend(config)


BACKENDS: dict[str, Callable[[Settings], IndexBackend]] = {"sqlite": _sqlite, "postgresql": _postgres,
                                                           "postgres": _postgres}


def open_backend(settings: Settings) -> IndexBackend:
    scheme = (settings.index_url or "sqlite://").split("://", 1)[0].split("+", 1)[0]
    if scheme not in BACKENDS:
        raise DocstackError(f"DOCSTACK_INDEX_URL: no index backend for '{scheme}://' (known: {', '.join(BACKENDS)})")
    return BACKENDS[scheme](settings)
