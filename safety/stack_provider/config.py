from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DocstackSafetyConfig(BaseModel):
    """Where docstack keeps its data (audit log, classifier cache), and an optional policy file."""

    home: str = "~/.docstack"
    policy: str | None = None
    profile: str = "embedded"

    @classmethod
    def sample_run_config(cls, __distro_dir__: str = "", **kwargs: Any) -> dict[str, Any]:
        return {"home": "${env.DOCSTACK_HOME:=~/.docstack}"}
