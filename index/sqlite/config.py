"""Settings of the SQLite + FAISS backend: where its collections live."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel


class SqliteIndexConfig(BaseModel):
    """`root` holds one folder per collection (`chunks.sqlite`, `index-<generation>.faiss`)."""

    root: Path

    @classmethod
    def from_url(cls, url: str | None, default_root: Path) -> SqliteIndexConfig:
        """`sqlite:///abs/path` or `sqlite://relative/path`; None: the default root."""
        if url is None:
            return cls(root=default_root)
        return cls(root=Path(url.removeprefix("sqlite://")).expanduser())
