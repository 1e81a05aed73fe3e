"""The safety audit log: one JSON line per decision that was not a silent allow, under
`settings.log_dir / "safety.jsonl"`, rotated. It holds a hash of the text, never the text, so the
personal data a shield redacted does not end up in the log. The web app, the CLI and the Llama
Stack server's safety provider all write it: docstack.jsonlog keeps that safe across processes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from docstack.hashing import text_sha256
from docstack.jsonlog import json_lines


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._log = json_lines(path)

    def write(self, stage: str, text: str, action: str, category: str | None, shield: str | None,
              collection: str | None = None, chunk_ids: Sequence[int] = (), score: float | None = None,
              redactions: int = 0) -> None:
        self._log.write({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "stage": stage, "action": action, "category": category,
            "shield": shield, "score": None if score is None else round(score, 3), "redactions": redactions,
            "collection": collection, "sha256": text_sha256(text),
            "chunk_ids": list(chunk_ids),
        })
