"""The request audit: one JSON line per request by a signed-in user, in `settings.log_dir /
"audit.jsonl"`: when, who (user and teams), what (action and collection), a SHA-256 of the
question (never its text: the same hash the safety log keeps, so the two can be joined), the
chunks cited, the model, the time taken, the safety decision, and the error when it failed.

Written through docstack.jsonlog, safe when the app's replicas and the CLI write at once. Only
admins read it (`may_read_audit`); on a laptop (identity off) nothing is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from docstack.access.identity import Principal
from docstack.hashing import text_sha256
from docstack.jsonlog import json_lines, read_lines

FILE_NAME = "audit.jsonl"
FIELDS = ("time", "user", "teams", "action", "collection", "question_sha256", "chunk_ids", "model", "seconds",
          "safety", "error")


def may_read_audit(principal: Principal) -> bool:
    """Who sees the audit: admins (the local user on a laptop is one)."""
    return principal.is_admin


class RequestAudit:
    def __init__(self, log_dir: Path):
        self.path = log_dir / FILE_NAME

    def record(self, principal: Principal, action: str, collection: str | None, question: str | None = None,
               chunk_ids: Sequence[int] = (), model: str | None = None, seconds: float | None = None,
               safety: Mapping | None = None, error: str | None = None) -> None:
        json_lines(self.path).write({
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "user": principal.user, "teams": sorted(principal.teams), "action": action, "collection": collection,
            "question_sha256": None if question is None else text_sha256(question),
            "chunk_ids": [int(c) for c in chunk_ids], "model": model,
            "seconds": None if seconds is None else round(seconds, 3), "safety": dict(safety) if safety else None,
            "error": error,
        })

    def recent(self, limit: int = 500, user: str | None = None, action: str | None = None,
               collection: str | None = None) -> list[dict]:
        """The newest `limit` lines that match every filter given, newest first."""
        wanted = {"user": user, "action": action, "collection": collection}
        rows = [r for r in read_lines(self.path)
                if all(value is None or r.get(key) == value for key, value in wanted.items())]
        return rows[::-1][:limit]
