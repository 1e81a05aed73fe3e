"""What every reader shares: the record a file is read into, the protocol each format implements,
and the helpers that keep parsers quiet.

A reader plans a file into parts (a whole file, or page ranges of a large PDF), parses each part
in a worker process (so the result must be plain data), then, in the main process and in order,
turns the parsed parts into records. Every format is scheduled this way by the pipeline."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from docstack.console import DocstackError
from docstack.ingest.structure import Outline

log = logging.getLogger(__name__)
_QUIET_LOCK = threading.Lock()  # _quiet changes process-wide logging and warning state

Warn = Callable[[str], None]


class ReadError(DocstackError):
    """A file that cannot be read; the message names the reason in one line."""


@dataclass(frozen=True)
class Record:
    text: str
    page: int | None = None
    section: str | None = None  # the heading path, "Chapter > Section"
    label: str | None = None  # the page's printed label, where the file defines one ("iv", "12")


@dataclass(frozen=True)
class Part:
    """What one worker parses: a whole file, or its pages [start, stop) (0-based)."""

    path: Path
    start: int = 0
    stop: int | None = None


class Reader(Protocol):
    suffixes: ClassVar[tuple[str, ...]]
    # What a file with no text at all is reported as.
    empty: ClassVar[str]

    def plan(self, path: Path, size: int) -> list[Part]:
        """The parts to parse, in order; more than one only where parts can be parsed apart."""

    def parse(self, part: Part) -> Any:
        """Parse one part; runs in a worker process, so it returns plain (picklable) data."""

    def records(self, path: Path, parsed: Iterable[Any], warn: Warn) -> Iterator[Record]:
        """The records of the parsed parts, given in plan order; raises ReadError."""

    def pages(self, parts: list[Part]) -> int | None:
        """The file's page count when the plan knows it (before any part is parsed)."""

    def outline(self, path: Path) -> Outline | None:
        """The structure the file declares (a PDF's bookmarks and page labels), read in the main
        process; None where the records' heading paths are all there is."""


class WholeFileReader:
    """A format read in one piece: `read(path)` gives all its records."""

    suffixes: ClassVar[tuple[str, ...]] = ()
    empty: ClassVar[str] = "no text found"

    def read(self, path: Path) -> list[Record]:
        raise NotImplementedError

    def plan(self, path: Path, size: int) -> list[Part]:
        return [Part(path)]

    def parse(self, part: Part) -> list[Record]:
        return self.read(part.path)

    def records(self, path: Path, parsed: Iterable[list[Record]], warn: Warn) -> Iterator[Record]:
        for records in parsed:
            yield from records

    def pages(self, parts: list[Part]) -> int | None:
        return None

    def outline(self, path: Path) -> Outline | None:
        return None


def brief(exc: BaseException) -> str:
    """An exception as one short line, for a ReadError reason."""
    message = " ".join(str(exc).split())[:120]
    return f"{exc.__class__.__name__}: {message}" if message else exc.__class__.__name__


@contextmanager
def quiet(library: str) -> Iterator[None]:
    """Parsers report recoverable damage through logging and warnings, which end up on stderr.
    docstack reports what matters itself, so their notes go to our log at debug level only."""
    logger = logging.getLogger(library)
    handler = _ToDebug()
    with _QUIET_LOCK:
        propagate = logger.propagate
        logger.addHandler(handler)
        logger.propagate = False
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
            for warning in caught:
                log.debug("%s: %s", library, warning.message)
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate


class _ToDebug(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log.debug("%s: %s", record.name, record.getMessage())




@dataclass
class Sections:
    """Collects paragraphs under a heading path; one record per section that has text."""

    records: list[Record] = field(default_factory=list)
    trail: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    head: str | None = None

    def heading(self, level: int, title: str) -> None:
        self.flush()
        self.trail = [(lvl, t) for lvl, t in self.trail if lvl < level] + [(level, title)]
        self.head = title  # the heading's words belong to its section's text, as in Markdown

    def add(self, text: str) -> None:
        if text.strip():
            self.blocks.append(text.strip("\n"))  # not spaces: they indent the first line of a <pre>

    def flush(self) -> None:
        # A heading with nothing under it makes no record: it would be a chunk without content.
        if self.blocks:
            text = "\n\n".join([self.head, *self.blocks] if self.head else self.blocks)
            self.records.append(Record(text=text, section=self.section))
        self.blocks, self.head = [], None

    @property
    def section(self) -> str | None:
        return " > ".join(t for _, t in self.trail) or None


def clean(text: str) -> str:
    return " ".join(text.split())
