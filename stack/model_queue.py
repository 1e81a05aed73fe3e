"""Turns at a model server that answers a fixed number of requests at once, first come, first
served, across every docstack process on this machine (the CLI, the web app's sessions, eval).

Why docstack queues itself: the embedded llama.cpp server generates one answer at a time, so a
question asked while others are answered has to wait, and that wait must neither count against
`DOCSTACK_MODEL_TIMEOUT` (which is for a model that does not answer) nor look like a hang. Each
waiting question holds a ticket: a file under ``run/queue/`` locked with flock(2) by its owner.
Tickets sort by the time they were taken; a lock nobody holds is a ticket whose process died,
and is swept. So the queue needs no daemon and survives kill -9 of any of its users."""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from docstack.console import DocstackError

# How often a waiting question looks at the queue again (and reports its wait).
POLL_SECONDS = 0.2
_numbers = itertools.count()


@dataclass(frozen=True)
class Waiting:
    """A question waiting for its turn: how many asked before it, and for how long it has waited."""

    ahead: int
    seconds: float

    def __str__(self) -> str:
        return f"waiting for the model: {_questions(self.ahead)} ahead of yours ({self.seconds:.0f} s)"


def _questions(n: int) -> str:
    return f"{n} question" if n == 1 else f"{n} questions"


WaitCallback = Callable[[Waiting], None]


class ModelQueue:
    def __init__(self, folder: Path, slots: int, max_wait: float = 1800.0):
        """`slots`: requests the server answers at once; 0 means no limit (no queue)."""
        self.folder = folder
        self.slots = slots
        self.max_wait = max_wait

    @contextmanager
    def turn(self, on_wait: WaitCallback | None = None) -> Iterator[float]:
        """Wait until fewer than `slots` earlier questions are still being answered or waiting;
        yields the seconds waited, and holds the turn until the block ends."""
        if not self.slots:
            yield 0.0
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        ticket, handle = self._take_ticket()
        try:
            while (ahead := self._ahead_of(ticket.name)) >= self.slots:
                waited = time.monotonic() - started
                if waited > self.max_wait:
                    raise DocstackError(f"the model is busy: {_questions(ahead)} still ahead after {waited:.0f} s "
                                        f"of waiting (DOCSTACK_QUEUE_TIMEOUT); try again later")
                if on_wait is not None:
                    on_wait(Waiting(ahead, waited))
                time.sleep(POLL_SECONDS)
            yield time.monotonic() - started
        finally:
            ticket.unlink(missing_ok=True)
            handle.close()  # releases the lock

    def waiting(self) -> int:
        """Questions being answered or waiting now."""
        return sum(1 for path in self._tickets() if _held(path))

    def _take_ticket(self) -> tuple[Path, object]:
        # Locked before it becomes visible (rename keeps the lock), so no one sweeps a new ticket.
        name = f"{time.time_ns():020d}-{os.getpid()}-{threading.get_ident()}-{next(_numbers)}"
        partial = self.folder / f".{name}"
        handle = open(partial, "w")
        fcntl.flock(handle, fcntl.LOCK_EX)
        ticket = self.folder / name
        os.rename(partial, ticket)
        return ticket, handle

    def _ahead_of(self, name: str) -> int:
        return sum(1 for path in self._tickets() if path.name < name and _held(path))

    def _tickets(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if not p.name.startswith("."))


def _held(ticket: Path) -> bool:
    """Whether a live process holds this ticket; a dead one's ticket is removed."""
    try:
        handle = open(ticket, "r")
    except FileNotFoundError:
        return False  # answered meanwhile
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        ticket.unlink(missing_ok=True)  # its owner died without removing it
        return False
