"""Long analysis work (summaries, extraction) in a background thread of the web app's server
process, so that the page stays usable while the model reads.

A task is one call such as `DocStack.summarize(..., on_progress=...)`. The page follows it by
polling `DocStack.jobs` (the job's row says done/total and the ETA from the moment it starts,
before the first unit reports), and cancels it with `DocStack.cancel_job`: the job stops after
the unit in flight and keeps what finished. Tasks live in the server process, shared by every
browser session, so a reloaded page finds its task still running, or its result."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from docstack import DocstackError, Job

log = logging.getLogger(__name__)

Work = Callable[[Callable[[Job], None]], dict]  # on_progress -> the result
KEEP = 64  # finished tasks kept with their results; the oldest go first


def owner() -> str:
    """How jobs name this process (their `owner`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Task:
    key: Hashable
    collection: str
    document: str  # the document's source, as its job names it
    operation: str  # the job's operation: "summarize" or "extract"
    label: str  # what the page calls it: "Summary of Safety"
    started: float = field(default_factory=time.time)
    job_id: str | None = None
    job: Job | None = None  # the last progress the job reported
    result: dict | None = None
    error: str | None = None
    cancel_asked: bool = False
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def cancelled(self) -> bool:
        return self.error is not None and self.cancel_asked


class Tasks:
    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._tasks: dict[Hashable, Task] = {}
        self._lock = threading.Lock()

    def start(self, task: Task, work: Work) -> Task:
        """Run `work` in a thread of its own; a task with the same key still running is returned
        instead (a second click does not start the work twice)."""
        with self._lock:
            running = self._tasks.get(task.key)
            if running is not None and running.running:
                return running
            self._tasks[task.key] = task
            self._trim()
        threading.Thread(target=self._run, args=(task, work), name=f"docstack-{task.operation}", daemon=True).start()
        return task

    def get(self, key: Hashable) -> Task | None:
        return self._tasks.get(key)

    def running(self, collection: str) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks.values() if t.running and t.collection == collection]

    def forget(self, key: Hashable) -> None:
        with self._lock:
            task = self._tasks.get(key)
            if task is not None and not task.running:
                del self._tasks[key]

    def cancel(self, task: Task, job_id: str, cancel_job: Callable[[str, str], Job]) -> None:
        """Ask the task's job to stop (`DocStack.cancel_job`) after the unit in flight."""
        task.cancel_asked = True
        cancel_job(job_id, task.collection)

    def _run(self, task: Task, work: Work) -> None:
        def on_progress(job: Job) -> None:
            task.job_id, task.job = job.id, dataclasses.replace(job)  # a copy: the runner keeps changing its own

        try:
            task.result = work(on_progress)
        except DocstackError as exc:
            task.error = str(exc)
        except Exception as exc:  # a thread's error would otherwise vanish with it
            log.exception("%s failed", task.label)
            task.error = f"{type(exc).__name__}: {exc}"
        finally:
            task.finished = time.time()

    def _trim(self) -> None:
        done = sorted((t for t in self._tasks.values() if not t.running), key=lambda t: t.finished or 0)
        for task in done[: max(0, len(self._tasks) - self.keep)]:
            del self._tasks[task.key]


def job_of(task: Task, jobs: list[Job], taken: set[str], me: str | None = None) -> Job | None:
    """The task's job among `DocStack.jobs`: by its id once it reported progress, else the job
    this process started for the same operation and document since the task began (and that no
    other task has)."""
    if task.job_id is not None:
        return next((j for j in jobs if j.id == task.job_id), task.job)
    me = me or owner()
    candidates = [j for j in jobs if j.operation == task.operation and j.document == task.document
                  and j.owner == me and j.id not in taken and j.started >= task.started - 1
                  and j.state in ("running", "queued")]
    return min(candidates, key=lambda j: j.started, default=None)
