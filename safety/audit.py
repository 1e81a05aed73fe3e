"""The safety audit log: one JSON line per decision that was not a silent allow, under
`settings.log_dir / "safety.jsonl"`, rotated. It holds a hash of the text, never the text, so the
personal data a shield redacted does not end up in the log."""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROTATE_BYTES = 5_000_000
ROTATE_KEEP = 3

_handlers: dict[Path, logging.Handler] = {}
_lock = threading.Lock()


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._log = logging.getLogger(f"docstack.safety.audit.{path}")
        self._log.propagate = False  # never to the console or the root log
        self._log.setLevel(logging.INFO)
        with _lock:
            if path not in _handlers:
                path.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.handlers.RotatingFileHandler(path, maxBytes=ROTATE_BYTES, backupCount=ROTATE_KEEP,
                                                               encoding="utf-8")
                handler.setFormatter(logging.Formatter("%(message)s"))
                _handlers[path] = handler
                self._log.addHandler(handler)

    def write(self, stage: str, text: str, action: str, category: str | None, shield: str | None,
              collection: str | None = None, chunk_ids: Sequence[int] = (), score: float | None = None,
              redactions: int = 0) -> None:
        self._log.info(json.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "stage": stage, "action": action, "category": category,
            "shield": shield, "score": None if score is None else round(score, 3), "redactions": redactions,
            "collection": collection, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "chunk_ids": list(chunk_ids),
        }, ensure_ascii=False))
