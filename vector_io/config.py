"""The docstack vector_io provider's settings, as a run config's `providers.vector_io[].config`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DocstackVectorIOConfig(BaseModel):
    """Where docstack keeps its collections, and how the stack learns of them.

    `require_user`: refuse every request that carries no signed-in user (a stack without
    `server.auth`); off, such requests run as docstack's local admin (a laptop).
    `sync_seconds`: how often collections made or deleted since are registered or dropped as
    vector stores. `embedding_model`: the stack's id of the model the stores name (registered in
    the same run config); docstack embeds queries with its own copy."""

    home: str = "~/.docstack"
    require_user: bool = True
    sync_seconds: float = 10.0
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_dimension: int = 384

    @classmethod
    def sample_run_config(cls, __distro_dir__: str = "", **kwargs: Any) -> dict[str, Any]:
        return {"home": "${env.DOCSTACK_HOME:=~/.docstack}", "require_user": True}
