"""JSON-lines logs that several processes append to at once (the web app's replicas, the CLI, the
Llama Stack server's safety provider), rotated by size without losing or repeating a line.

`logging.handlers.RotatingFileHandler` is safe within one process only: two processes each decide
to rotate, the second renames the first's fresh file away, and lines are lost or land in a file
that was already rotated out (4 processes writing 2,500 lines each into 20 kB files: 1,529 of the
10,000 lines lost, and logging errors). Here every write holds an exclusive `flock` on a sibling
lock file while it checks the size, rotates with `os.replace` and appends with one `write` on an
`O_APPEND` descriptor; a process whose open file was rotated away by another sees the inode change
and reopens. The lock also covers the writer's own threads.

    log = json_lines(settings.log_dir / "audit.jsonl")
    log.write({"user": "alice", "action": "search"})
    recent = read_lines(settings.log_dir / "audit.jsonl", limit=500)
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

ROTATE_BYTES = 5_000_000
ROTATE_KEEP = 3


class JsonLines:
    """One log file and its rotated copies (`path.1` newest ... `path.{keep}` oldest)."""

    def __init__(self, path: Path, max_bytes: int = ROTATE_BYTES, keep: int = ROTATE_KEEP):
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._thread_lock = threading.Lock()  # flock is per open file: threads sharing it need this too
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._pid = 0

    def write(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._thread_lock:
            self._own_descriptors()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._rotate_if_full(len(data))
                fd = self._current_fd()
                os.write(fd, data)  # one write of a whole line on O_APPEND: never interleaved
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._thread_lock:
            for fd in (self._fd, self._lock_fd):
                if fd is not None and self._pid == os.getpid():
                    os.close(fd)
            self._fd = self._lock_fd = None

    def _own_descriptors(self) -> None:
        """Descriptors of this process: a child made by fork shares its parent's open lock file,
        and a lock on a shared open file does not exclude the other process, so it opens its own."""
        if self._pid != os.getpid():
            self._fd = None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()

    def _current_fd(self) -> int:
        """The descriptor of the file now at `path`: reopened when another process rotated it away."""
        if self._fd is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    return self._fd
            except FileNotFoundError:
                pass
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def _rotate_if_full(self, incoming: int) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        for n in range(self.keep - 1, 0, -1):
            older = Path(f"{self.path}.{n}")
            if older.exists():
                os.replace(older, f"{self.path}.{n + 1}")
        if self.keep > 0:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)


_logs: dict[Path, JsonLines] = {}
_logs_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A thread of the parent may have held a writer's thread lock when it forked: the child's
    copy would stay locked forever."""
    global _logs_lock
    _logs_lock = threading.Lock()
    for log in _logs.values():
        log._thread_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def json_lines(path: Path, max_bytes: int = ROTATE_BYTES, keep: int = ROTATE_KEEP) -> JsonLines:
    """The one writer of `path` in this process (every user of a file shares its descriptors)."""
    path = Path(os.path.abspath(path))
    with _logs_lock:
        if path not in _logs:
            _logs[path] = JsonLines(path, max_bytes, keep)
        return _logs[path]


def read_lines(path: Path, limit: int | None = None, keep: int = ROTATE_KEEP) -> list[dict]:
    """The newest `limit` records, oldest first, across the file and its rotated copies; a line a
    crash cut short is skipped. Read under a shared lock, so no rotation moves lines between the
    files while they are read (which would show a line twice or not at all)."""
    path = Path(path)
    if not path.exists() and not Path(f"{path}.1").exists():
        return []
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)
        found: list[dict] = []
        for file in [path, *(Path(f"{path}.{n}") for n in range(1, keep + 1))]:
            found = list(_records(file)) + found
            if limit is not None and len(found) >= limit:
                return found[-limit:]
        return found
    finally:
        os.close(lock)  # closing the last descriptor of the open file releases its lock


def _records(file: Path) -> Iterator[dict]:
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
