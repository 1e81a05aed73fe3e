"""Files in, chunks with embeddings in a collection out: read -> chunk -> embed -> store.

Unchanged files are recognised by size and mtime, then by content hash, before any parsing.
Files, and the page ranges of large PDFs, are parsed in worker processes while the main process
chunks, embeds and writes; a large file is written in parts so memory stays bounded."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from docstack.console import DocstackError
from docstack.hashing import file_sha256
from docstack.ingest.chunker import Chunk, Chunker
from docstack.ingest.embedder import Embedder
from docstack.ingest.readers import (
    Record, pdf_page_count, pdf_page_lines, pdf_range_records, read_document, supported,
)
from docstack.ingest.store import ChunkStore, Document

log = logging.getLogger(__name__)

# A file with more chunks than this is written in parts of this size.
PART_CHUNKS = 2048
# Chunks are embedded this many at a time (a few seconds' work), and progress is reported after
# each step, so that a large file shows how far it has got.
EMBED_STEP = 256
# Records longer than this are cut at paragraph breaks before chunking, to bound memory.
MAX_RECORD_CHARS = 1_000_000
# PDFs larger than this are parsed in page ranges of this many pages, in parallel.
SPLIT_PDF_BYTES = 1_000_000
SPLIT_PDF_PAGES = 50


@dataclass
class IngestReport:
    files: int = 0
    chunks: int = 0
    pages: int = 0
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    unchanged: int = 0
    duplicates: int = 0
    removed: int = 0
    warnings: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # files of unsupported types found in folders

    def to_json(self) -> dict:
        return asdict(self)

    def fail(self, path: Path | str, reason: str) -> None:
        self.errors.append({"path": str(path), "error": reason})


@dataclass(frozen=True)
class Progress:
    files_done: int  # files finished, `current` among them once its share is 1
    files_total: int
    pages: int
    chunks: int
    current: str
    current_share: float = 1.0  # how much of `current` is done, by its pages

    @property
    def share(self) -> float:
        """The share of the whole run that is done."""
        partial = self.current_share if self.current_share < 1 else 0.0
        return min(1.0, (self.files_done + partial) / max(1, self.files_total))


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class _Pending:
    """A file that needs parsing: what the store will record about it."""

    path: Path
    key: str
    sha256: str
    size: int
    mtime: float


def discover(paths: Iterable[Path | str], report: IngestReport) -> list[Path]:
    """Every supported file under `paths`, in a stable order; problems go into the report."""
    found: list[Path] = []
    for arg in map(Path, paths):
        if arg.is_dir():
            for root, dirs, files in os.walk(arg):  # does not follow symlinked folders: no loops
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(f for f in files if not f.startswith(".")):
                    if supported(Path(name)):
                        found.append(Path(root) / name)
                    else:
                        report.skipped.append({"path": str(Path(root) / name),
                                               "reason": f"unsupported file type '{Path(name).suffix or name}'"})
        elif arg.is_file():
            if supported(arg):
                found.append(arg)
            else:
                report.fail(arg, f"unsupported file type '{arg.suffix or arg.name}'")
        elif arg.is_symlink():
            report.fail(arg, "broken or looping symbolic link")
        else:
            report.fail(arg, "no such file or directory")
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class _Task:
    """A whole file, or a page range [start, stop) of a large PDF, for one worker."""

    index: int
    path: Path
    start: int = 0
    stop: int | None = None


@dataclass
class _Parsed:
    records: Iterable[Record] = field(default_factory=list)
    page_lines: list[list[str]] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    pages: int | None = None  # known before the records when they arrive range by range


def read_task(task: _Task) -> _Parsed:
    """Parse a file or a page range; runs in a worker process, so everything comes back as values."""
    parsed = _Parsed()
    with _collect_warnings(parsed.warnings):
        try:
            if task.stop is None:
                parsed.records = read_document(task.path)
            else:
                parsed.page_lines = pdf_page_lines(task.path, task.start, task.stop)
        except DocstackError as exc:
            parsed.error = str(exc)
        except OSError as exc:
            parsed.error = exc.strerror or str(exc)
    return parsed


@contextmanager
def _collect_warnings(into: list[str]) -> Iterator[None]:
    """Readers' warnings ("no text layer (scanned?)") travel back with the result, not to stderr."""
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: into.append(record.getMessage())
    source = logging.getLogger("docstack.ingest.readers")
    source.addHandler(handler)
    propagate, source.propagate = source.propagate, False
    try:
        yield
    finally:
        source.removeHandler(handler)
        source.propagate = propagate


class Ingestor:
    def __init__(self, embedder: Embedder, chunker: Chunker, workers: int | None = None, write_batch: int = 512,
                 screen: Callable[[str], str] | None = None):
        self.embedder = embedder
        self.chunker = chunker
        self.screen = screen  # the context shield: a chunk's text -> its stored verdict
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.write_batch = write_batch  # chunks gathered across small files before one transaction

    def run(self, paths: Iterable[Path | str], store: ChunkStore, on_progress: ProgressCallback | None = None,
            sync: bool = False) -> IngestReport:
        started = time.perf_counter()
        paths = [Path(p) for p in paths]
        report = IngestReport()
        files = discover(paths, report)
        todo = self._triage(files, store, report)
        done = len(files) - len(todo)
        batch: list[Document] = []
        for pending, parsed in self._parse(todo):
            # Records that still arrive from workers can fail in a later page range: such a file
            # is held until it is whole, so that a failure never replaces what was stored.
            streamed = not isinstance(parsed.records, list)
            held: list[Document] = []
            file_chunks = 0

            def step(chunks: int, pages: int, share: float) -> None:  # called within this iteration
                if on_progress:
                    on_progress(Progress(done, len(files), report.pages + pages, report.chunks + chunks,
                                         str(pending.path), share))

            try:
                if parsed.error:
                    raise DocstackError(parsed.error)
                for part in self._documents(pending, parsed, step):
                    held.append(part)
                    file_chunks += len(part.chunks)
                    if not streamed:
                        batch, held = self._write_when_full(store, batch + held), []
                batch = self._write_when_full(store, batch + held)
                report.files += 1
                report.pages += part.pages
                report.chunks += file_chunks
            except DocstackError as exc:
                report.fail(pending.path, str(exc))
            report.warnings += [{"path": str(pending.path), "warning": w} for w in parsed.warnings]
            done += 1
            if on_progress:
                on_progress(Progress(done, len(files), report.pages, report.chunks, str(pending.path)))
        if batch:
            store.write(batch)
        if sync:
            report.removed = self._remove_missing(paths, files, store)
        store.flush()
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _write_when_full(self, store: ChunkStore, batch: list[Document]) -> list[Document]:
        if sum(len(d.chunks) for d in batch) < self.write_batch:
            return batch
        store.write(batch)
        return []

    def _triage(self, files: list[Path], store: ChunkStore, report: IngestReport) -> list[_Pending]:
        """The files that need parsing; unchanged files, duplicates and unreadable ones are settled here."""
        todo: list[_Pending] = []
        seen_hashes: dict[str, str] = {}
        for path in files:
            try:
                info = path.stat()
                if not stat.S_ISREG(info.st_mode):
                    raise DocstackError("not a regular file")
                if info.st_size == 0:
                    raise DocstackError("empty file")
                key = str(path.resolve())
                if store.document_stamp(key) == (info.st_size, info.st_mtime):
                    report.unchanged += 1
                    continue
                sha = file_sha256(path)
            except DocstackError as exc:
                report.fail(path, str(exc))
                continue
            except OSError as exc:
                report.fail(path, exc.strerror or str(exc))
                continue
            if store.document_hash(key) == sha:
                report.unchanged += 1
                continue
            twin = seen_hashes.get(sha) or store.path_with_hash(sha)
            if twin and twin != key and Path(twin).exists():
                log.info("%s has the same content as %s; stored once", path, twin)
                report.duplicates += 1
                continue
            seen_hashes[sha] = key
            todo.append(_Pending(path, key, sha, info.st_size, info.st_mtime))
        return todo

    def _parse(self, todo: list[_Pending]) -> Iterator[tuple[_Pending, _Parsed]]:
        """Parsed files in order. Large PDFs are split into page ranges; with more than one task,
        tasks run in worker processes, a bounded number ahead of the consumer."""
        tasks = [task for i, pending in enumerate(todo) for task in _tasks(i, pending)]
        if len(tasks) < 2 or self.workers < 2:
            results: Iterator[_Parsed] = map(read_task, tasks)
            yield from _merged(todo, tasks, results)
            return
        # A fork server: safe in a threaded process (the web app), started once per process;
        # its workers inherit the preloaded parsers instead of importing them each.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["docstack.ingest.readers", "pypdfium2", "bs4", "docx"])
        with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context) as pool:
            yield from _merged(todo, tasks, _ahead(pool, tasks, 2 * self.workers))

    def _documents(self, pending: _Pending, parsed: _Parsed,
                   on_step: Callable[[int, int, float], None] | None = None) -> Iterator[Document]:
        """The file's chunks with their embeddings, in parts of at most PART_CHUNKS. After each
        embedding step, `on_step(chunks, pages, share)`: what is done of this file so far."""
        pages = parsed.pages or max((r.page or 0 for r in parsed.records), default=0) or 1
        chunks: list[Chunk] = []
        vectors = np.zeros((0, self.embedder.dimension), dtype=np.float32)
        first, total = True, 0
        for step in itertools.batched(self._chunks(parsed.records), EMBED_STEP):
            chunks += step
            vectors = np.vstack([vectors, self.embedder.embed([c.text for c in step])])
            total += len(step)
            if on_step and step[-1].page:
                on_step(total, step[-1].page, min(0.99, step[-1].page / pages))  # 1: written
            while len(chunks) >= PART_CHUNKS:
                yield self._document(pending, pages, chunks[:PART_CHUNKS], vectors[:PART_CHUNKS], first, last=False)
                chunks, vectors, first = chunks[PART_CHUNKS:], vectors[PART_CHUNKS:], False
        if first and not chunks:
            scanned = pending.path.suffix.lower() == ".pdf"
            raise DocstackError("no text layer (scanned?)" if scanned else "no text found")
        yield self._document(pending, pages, chunks, vectors, first, last=True)

    def _chunks(self, records: Iterable[Record]) -> Iterator[Chunk]:
        """Chunks with offsets into their record's full text."""
        for record, offset in _bounded(records):
            for chunk in self.chunker.run([record]):
                yield dataclasses.replace(chunk, start=chunk.start + offset, end=chunk.end + offset)

    def _document(self, p: _Pending, pages: int, chunks: list[Chunk], vectors: np.ndarray, first: bool,
                  last: bool) -> Document:
        safety = [self.screen(c.text) for c in chunks] if self.screen else None
        return Document(p.key, str(p.path), p.sha256, pages, p.size, p.mtime, chunks, vectors, first, last, safety)

    @staticmethod
    def _remove_missing(paths: list[Path], files: list[Path], store: ChunkStore) -> int:
        """Forget documents under the synced folders that are no longer there."""
        roots = [str(p.resolve()) + os.sep for p in paths if p.is_dir()]
        present = {str(f.resolve()) for f in files}
        gone = [d["path"] for d in store.documents()
                if d["path"] not in present and any(d["path"].startswith(r) for r in roots)]
        for path in gone:
            store.remove(path)
        return len(gone)


def _tasks(index: int, pending: _Pending) -> list[_Task]:
    if pending.path.suffix.lower() != ".pdf" or pending.size < SPLIT_PDF_BYTES:
        return [_Task(index, pending.path)]
    try:
        pages = pdf_page_count(pending.path)
    except DocstackError:
        return [_Task(index, pending.path)]  # its worker reports the error
    return [_Task(index, pending.path, start, min(start + SPLIT_PDF_PAGES, pages))
            for start in range(0, pages, SPLIT_PDF_PAGES)] or [_Task(index, pending.path)]


def _ahead(pool: ProcessPoolExecutor, tasks: list[_Task], window: int) -> Iterator[_Parsed]:
    """Results in task order, with at most `window` tasks submitted ahead (bounded memory)."""
    futures: deque = deque()
    for task in tasks:
        futures.append(pool.submit(read_task, task))
        if len(futures) >= window:
            yield futures.popleft().result()
    while futures:
        yield futures.popleft().result()


def _merged(todo: list[_Pending], tasks: list[_Task], results: Iterable[_Parsed]) -> Iterator[tuple[_Pending, _Parsed]]:
    """One result per file. A split PDF's records come range by range, as its workers finish."""
    for index, group in itertools.groupby(zip(tasks, results), key=lambda pair: pair[0].index):
        first_task, first = next(group)
        if first_task.stop is None:
            yield todo[index], first
            continue
        merged = _Parsed(warnings=list(first.warnings), pages=max(t.stop for t in tasks if t.index == index))
        merged.records = _range_records(todo[index].path, itertools.chain([(first_task, first)], group), merged)
        yield todo[index], merged  # ranges left unread after a failure are skipped by groupby


def _range_records(path: Path, ranges: Iterable[tuple[_Task, _Parsed]], merged: _Parsed) -> Iterator[Record]:
    blank = total = 0
    running: set[str] = set()
    for n, (task, parsed) in enumerate(ranges):
        if n:
            merged.warnings += parsed.warnings
        if parsed.error:
            raise DocstackError(parsed.error)
        blank += sum(1 for lines in parsed.page_lines if not lines)
        total += len(parsed.page_lines)
        yield from pdf_range_records(parsed.page_lines, task.start + 1, running)
    if blank == total:
        merged.warnings.append("no text layer (scanned?)")
    elif blank:
        log.info("%s: %d of %d pages have no text", path, blank, total)


def _bounded(records: Iterable[Record]) -> Iterator[tuple[Record, int]]:
    """Records no longer than MAX_RECORD_CHARS, cut at paragraph (else word) breaks, each with
    the offset of its text in the original record."""
    for record in records:
        text, start = record.text, 0
        while len(text) - start > MAX_RECORD_CHARS:
            limit = start + MAX_RECORD_CHARS
            end = text.rfind("\n\n", start + MAX_RECORD_CHARS // 2, limit)
            if end < 0:
                end = text.rfind(" ", start + 1, limit)
            end = end if end > start else limit
            yield dataclasses.replace(record, text=text[start:end]), start
            start = end
        yield (dataclasses.replace(record, text=text[start:]) if start else record), start
