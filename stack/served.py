"""The models the running stack serves, asked once and kept until the stack changes.

Asking the stack costs an HTTP round trip; the answer changes only when the stack does: when
`docstack up` writes a new run config, or when a model stops answering (the router then falls
back, and the list is asked again). A stack started elsewhere (compose) has no run config here;
its list is asked again after `MAX_AGE` seconds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from docstack.stack.client import StackClient

MAX_AGE = 60.0


class ServedModels:
    def __init__(self, client: StackClient, run_config: Path, max_age: float = MAX_AGE):
        self.client = client
        self.run_config = run_config
        self.max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[tuple, float, frozenset[str]] | None = None

    def ids(self) -> frozenset[str]:
        """The stack ids of the models served now; DocstackError when no stack answers."""
        stamp = self._stamp()
        with self._lock:
            if self._cached and self._cached[0] == stamp and time.monotonic() - self._cached[1] < self.max_age:
                return self._cached[2]
        served = frozenset(self.client.models())
        with self._lock:
            self._cached = (stamp, time.monotonic(), served)
        return served

    def forget(self) -> None:
        """Ask the stack again next time (after a model failed, or the stack was restarted)."""
        with self._lock:
            self._cached = None

    def _stamp(self) -> tuple:
        try:
            info = self.run_config.stat()
        except OSError:
            return ()
        return (info.st_mtime_ns, info.st_size)
