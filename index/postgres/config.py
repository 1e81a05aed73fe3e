"""Settings of the PostgreSQL + pgvector backend: where the server is and how collections are indexed."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from docstack.settings import without_password


class PostgresIndexConfig(BaseModel):
    """`dsn` is a libpq URL (`postgresql://user:password@host:port/database`). The text-search
    language and HNSW build parameters apply to collections created from now on; `hnsw_ef_search`
    (recall against speed) to every search."""

    dsn: str
    pool_size: int = Field(default=4, ge=1)
    text_language: str = "english"  # a PostgreSQL text search configuration: english, simple, german...
    hnsw_m: int = Field(default=32, ge=2, le=100)
    hnsw_ef_construction: int = Field(default=128, ge=4, le=1000)
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000)
    connect_timeout: int = Field(default=5, ge=1)

    @field_validator("text_language")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # It is written into each collection's generated column, so it must be a plain identifier.
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
            raise ValueError(f"'{value}' is not a text search configuration name like english or simple")
        return value

    @classmethod
    def from_url(cls, url: str, **options) -> PostgresIndexConfig:
        """`postgresql://...` or `postgres://...`; a `postgresql+psycopg://` driver tag is dropped."""
        scheme, rest = url.split("://", 1)
        return cls(dsn=f"{scheme.split('+', 1)[0]}://{rest}", **options)

    def safe_dsn(self) -> str:
        """The DSN without its password, for messages."""
        return without_password(self.dsn)
