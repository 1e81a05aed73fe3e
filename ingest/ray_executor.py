"""Ingestion on a Ray cluster: each file is parsed, chunked and embedded by a Ray task, and its
documents stream back to this process, which screens and writes them through the index backend
in file order, exactly as after local parsing (`pipeline.Ingestor` does both).

Workers read files by path, so the paths must be readable at the same place on every node (a
shared mount); workers need docstack installed (`pip install 'docstack[ray]'`) in the Python the
cluster runs. A worker loads the embedding model once and keeps it for the files after."""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Iterator
from typing import Any

from docstack.console import DocstackError
from docstack.ingest.pipeline import Finished, Ingestor, Pending, Prepared, prepare_whole
from docstack.ingest.readers import reader_for

log = logging.getLogger(__name__)

SETTING = "DOCSTACK_RAY_ADDRESS (or --ray)"
# Ray's own connection attempts retry for about a minute on an address nobody answers at; a plain
# TCP connect says so in this long.
CONNECT_TIMEOUT = 3.0
# Files in flight per CPU of the cluster: enough that a worker finishing one finds the next queued
# while this process writes, few enough that streamed documents waiting to be written stay small.
AHEAD_PER_CPU = 2


class RayExecutor:
    """Whole files as Ray tasks on the cluster at `address` (host:port of its head, ray://host:port
    for Ray Client, or "auto" for the one started on this machine)."""

    def __init__(self, address: str):
        self.address = address

    def prepare(self, ingestor: Ingestor, todo: list[Pending]) -> Iterator[Prepared]:
        ray = self._connect()  # even with nothing to read: a wrong address is said at once
        task = ray.remote(num_cpus=1)(prepare_whole)
        recipe = ray.put(ingestor.recipe())
        window = max(1, AHEAD_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))
        flying: deque[tuple[Pending, bool, Any]] = deque()
        for pending in todo:
            parts = reader_for(pending.path).plan(pending.path, pending.size)
            flying.append((pending, len(parts) > 1, task.remote(recipe, pending, parts)))
            if len(flying) >= window:
                yield _prepared(ray, *flying.popleft())
        while flying:
            yield _prepared(ray, *flying.popleft())

    def _connect(self):
        """The `ray` module, connected to the cluster (once per process)."""
        try:
            import ray
        except ImportError:
            raise DocstackError("Ray is not installed: pip install 'docstack[ray]', or unset " + SETTING) from None
        if ray.is_initialized():
            return ray
        _reachable(self.address)
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False,
                     include_dashboard=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DocstackError(f"cannot join the Ray cluster at {self.address}: {_first_line(exc)}; "
                                f"fix {SETTING}") from None
        log.info("ingesting on the Ray cluster at %s (%s CPUs)", self.address, ray.cluster_resources().get("CPU"))
        return ray


def _prepared(ray, pending: Pending, held: bool, stream) -> Prepared:
    warnings: list[str] = []
    return Prepared(pending, held, _events(ray, stream, warnings), warnings)


def _events(ray, stream, warnings: list[str]) -> Iterator[Any]:
    """A task's documents and steps as they arrive; its `Finished` fills `warnings` and raises
    its error. A task lost with its worker or node is this file's error, not the run's."""
    try:
        for ref in stream:
            event = ray.get(ref)
            if isinstance(event, Finished):
                warnings += event.warnings
                if event.error:
                    raise DocstackError(event.error)
                return
            yield event
    except ray.exceptions.RayError as exc:
        raise DocstackError(f"the Ray task failed: {_first_line(exc)}") from None


def _reachable(address: str) -> None:
    """Fail in seconds, in one line, where nothing listens at host:port."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT):
            return
    except (OSError, ValueError):
        raise DocstackError(f"no Ray cluster answers at '{address}': start one with `ray start --head` "
                            f"or fix {SETTING}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
