"""Collections as folders under one root, each a `SqliteIndex`."""

from __future__ import annotations

import shutil

from docstack.console import DocstackError
from docstack.index.sqlite.config import SqliteIndexConfig
from docstack.index.sqlite.store import SqliteIndex


class SqliteBackend:
    def __init__(self, config: SqliteIndexConfig):
        self.root = config.root

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and SqliteIndex.exists(p))

    def exists(self, name: str) -> bool:
        return SqliteIndex.exists(self.root / name)

    def open(self, name: str, model: str, dimension: int) -> SqliteIndex:
        return SqliteIndex(self.root / name, model, dimension)

    def delete(self, name: str) -> None:
        shutil.rmtree(self.root / name, ignore_errors=True)

    def replace(self, name: str, staging: str) -> None:
        live, new = self.root / name, self.root / staging
        if not SqliteIndex.exists(new):
            raise DocstackError(f"collection '{staging}' does not exist")
        old = live.with_name(f".{name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if live.exists():
            live.rename(old)
        new.rename(live)
        shutil.rmtree(old, ignore_errors=True)

    def document_paths(self, name: str) -> list[str]:
        return SqliteIndex.document_paths(self.root / name)
