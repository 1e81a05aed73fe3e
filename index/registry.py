"""Index backends by the scheme of `DOCSTACK_INDEX_URL`: the app asks for an `IndexBackend` and
never names a backend's classes."""

from __future__ import annotations

from collections.abc import Callable

from docstack.console import DocstackError
from docstack.index.base import IndexBackend
from docstack.settings import Settings


def _sqlite(settings: Settings) -> IndexBackend:
    from docstack.index.sqlite.backend import SqliteBackend
    from docstack.index.sqlite.config import SqliteIndexConfig

    return SqliteBackend(SqliteIndexConfig.from_url(settings.index_url, settings.collections_dir))


BACKENDS: dict[str, Callable[[Settings], IndexBackend]] = {"sqlite": _sqlite}


def open_backend(settings: Settings) -> IndexBackend:
    scheme = (settings.index_url or "sqlite://").split("://", 1)[0].split("+", 1)[0]
    if scheme not in BACKENDS:
        raise DocstackError(f"DOCSTACK_INDEX_URL: no index backend for '{scheme}://' (known: {', '.join(BACKENDS)})")
    return BACKENDS[scheme](settings)
