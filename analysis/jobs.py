"""Long jobs: work split into units, each checkpointed as it finishes, with progress and an ETA.

A job and its units' results live in the collection's state store (`ChunkIndex.put_state`), so
they survive the process: a unit's result is cached under the document's hash, the operation,
the unit, the model and the prompt version, and a rerun of an unchanged document makes no model
call; after a `kill -9` the next run finds the finished units and does only the rest. Cancel is
a flag the runner reads between units. The ETA counts the work left in tokens, at the speed the
units computed in this run went (cached units cost nothing and do not count)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from docstack.index.base import ChunkIndex

from docstack.console import DocstackError

JOB = "job"
UNIT = "unit"


class Cancelled(DocstackError):
    """The job was cancelled between two units; what finished stays cached."""


@dataclass
class Job:
    id: str
    operation: str
    document: str
    params: dict
    model: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    done: int = 0
    total: int = 0
    cached: int = 0  # units found finished, by an earlier run
    model_calls: int = 0
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    eta_seconds: float | None = None
    owner: str = ""  # host:pid of the process running it
    error: str | None = None
    cancel: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def alive(self) -> bool:
        """Whether the process that runs it is still there (a `kill -9` leaves it 'running')."""
        host, _, pid = self.owner.partition(":")
        if self.state != "running" or host != socket.gethostname() or not pid.isdigit():
            return self.state == "running" and host != socket.gethostname()
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


@dataclass(frozen=True)
class Unit:
    key: str  # stable within the document: what the cache is keyed by
    size: int  # tokens of input: the ETA's measure of work


def job_id(operation: str, sha256: str, params: dict, model: str) -> str:
    """The same operation on the same document with the same settings is the same job: running
    it again resumes it."""
    blob = json.dumps([operation, sha256, params, model], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def unit_key(sha256: str, operation: str, unit: str, model: str, prompt_version: str) -> str:
    return hashlib.sha256("\x1f".join([sha256, operation, unit, model, prompt_version]).encode()).hexdigest()


class Jobs:
    """The jobs of one collection."""

    def __init__(self, index: ChunkIndex):
        self.index = index

    def list(self) -> list[Job]:
        jobs = [Job(**value) for value in self.index.states(JOB).values()]
        for job in jobs:
            if job.state == "running" and not job.alive:
                job.state, job.eta_seconds = "interrupted", None
        return sorted(jobs, key=lambda j: j.started, reverse=True)

    def get(self, job_id: str) -> Job:
        value = self.index.get_state(JOB, job_id)
        if value is None:
            raise DocstackError(f"no job '{job_id}'; `docstack jobs` lists them")
        return Job(**value)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state in ("running", "queued"):
            job.cancel = True
            self.save(job)
        return job

    def save(self, job: Job) -> None:
        """Write the job's row, keeping a cancel another process asked for meanwhile."""
        stored = self.index.get_state(JOB, job.id)
        if stored and stored.get("cancel") and job.state in ("running", "queued"):
            job.cancel = True
        job.updated = time.time()
        self.index.put_state(JOB, job.id, job.to_json())

    def run(self, job: Job, units: Sequence[Unit], sha256: str, prompt_version: str,
            work: Callable[[Unit], dict], on_progress: Callable[[Job], None] | None = None) -> list[dict]:
        """Each unit's result, from the cache or from `work`, in order; the job's row says how far
        it got. Raises Cancelled when asked to stop between units."""
        offset = job.done if job.state == "running" else 0  # a later stage of this run (a reduce)
        if not offset:
            job.state, job.total, job.done, job.cached, job.model_calls = "running", 0, 0, 0, 0
            job.cancel, job.error, job.owner = False, None, f"{socket.gethostname()}:{os.getpid()}"
            self.index.put_state(JOB, job.id, job.to_json())  # a new run clears an old cancel
        job.total += len(units)
        keys = [unit_key(sha256, job.operation, u.key, job.model, prompt_version) for u in units]
        results: list[dict | None] = [self.index.get_state(UNIT, k) for k in keys]
        job.cached += sum(r is not None for r in results)
        self.save(job)
        left = sum(u.size for u, r in zip(units, results) if r is None)
        spent_seconds = spent_size = 0
        try:
            for i, (unit, key) in enumerate(zip(units, keys)):
                if results[i] is None:
                    self._check_cancel(job)
                    started = time.monotonic()
                    results[i] = work(unit)
                    self.index.put_state(UNIT, key, results[i])
                    job.model_calls += results[i].get("model_calls", 1)
                    spent_seconds += time.monotonic() - started
                    spent_size += unit.size
                    left -= unit.size
                    job.eta_seconds = round(spent_seconds / spent_size * left, 1) if spent_size else None
                job.done = offset + i + 1
                self.save(job)
                if on_progress:
                    on_progress(job)
        except Cancelled:
            job.state, job.eta_seconds = "cancelled", None
            self.save(job)
            raise
        except BaseException as exc:
            job.state, job.error, job.eta_seconds = "failed", str(exc) or type(exc).__name__, None
            self.save(job)
            raise
        return results  # type: ignore[return-value]

    def finish(self, job: Job) -> None:
        job.state, job.eta_seconds = "done", 0.0
        self.save(job)

    def _check_cancel(self, job: Job) -> None:
        stored = self.index.get_state(JOB, job.id)
        if stored and stored.get("cancel"):
            raise Cancelled(f"job {job.id} was cancelled; {job.done} of {job.total} units are kept")
