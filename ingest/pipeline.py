"""Files in, chunks with embeddings in a collection out: read -> chunk -> embed -> store.

Unchanged files are recognised by size and mtime, then by content hash, before any parsing.
Each file's reader plans it into parts (a large PDF into page ranges). An executor turns the
files to read into their embedded documents: `LocalExecutor` parses parts in worker processes
while this process chunks and embeds; `docstack.ingest.ray_executor.RayExecutor` parses, chunks
and embeds whole files as Ray tasks. Either way this process screens and writes, in file order,
through the index backend; a large file is written in parts so memory stays bounded."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from docstack.console import DocstackError
from docstack.hashing import file_sha256
from docstack.index.base import Chunk, ChunkIndex, Document
from docstack.index.embedder import Embedder
from docstack.ingest.chunker import Chunker
from docstack.ingest.readers import Part, Reader, Record, reader_for, supported
from docstack.ingest.structure import OutlineBuilder

log = logging.getLogger(__name__)

# A file with more chunks than this is written in parts of this size.
PART_CHUNKS = 2048
# Chunks are embedded this many at a time (a few seconds' work), and progress is reported after
# each step, so that a large file shows how far it has got.
EMBED_STEP = 256
# Records longer than this are cut at paragraph breaks before chunking, to bound memory.
MAX_RECORD_CHARS = 1_000_000


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
class Pending:
    """A file that needs parsing: what the store will record about it."""

    path: Path
    key: str
    sha256: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Step:
    """Progress within a file, after an embedding step: its chunks and the page reached so far,
    and the share of it done."""

    chunks: int
    pages: int
    share: float


@dataclass(frozen=True)
class Finished:
    """The last event of a file prepared elsewhere (a Ray task): its reader's warnings, and the
    one-line error that failed it, if any."""

    warnings: list[str]
    error: str | None = None


@dataclass
class Prepared:
    """A file on its way to the index: its documents (at most PART_CHUNKS chunks each) with
    progress steps between them, as they are embedded. Iterating `events` raises DocstackError
    where the file fails; `warnings` is complete once it has been iterated."""

    pending: Pending
    held: bool  # written only once whole (see `_File.held`)
    events: Iterator[Document | Step]
    warnings: list[str]


class Executor(Protocol):
    """Turns the files to read into `Prepared` files, in order: where parsing and embedding run."""

    def prepare(self, ingestor: Ingestor, todo: list[Pending]) -> Iterator[Prepared]: ...


@dataclass(frozen=True)
class Recipe:
    """How an ingestor embeds and chunks, as plain data: enough to build the same one elsewhere
    (a Ray worker) without sending the model."""

    model: str
    batch_size: int
    models_dir: str | None
    precision: str
    chunk_tokens: int
    overlap: int


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
    """One part of the `index`-th file to parse, for one worker."""

    index: int
    part: Part


@dataclass
class _Parsed:
    """A worker's result, sent back by value."""

    data: Any = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def parse_part(part: Part) -> _Parsed:
    """Parse one part of a file; runs in a worker process."""
    parsed = _Parsed()
    with _collect_warnings(parsed.warnings):
        try:
            parsed.data = reader_for(part.path).parse(part)
        except DocstackError as exc:
            parsed.error = str(exc)
        except OSError as exc:
            parsed.error = exc.strerror or str(exc)
    return parsed


@dataclass
class _File:
    """A file being read: its reader, its parts, and their parsed results as workers finish them."""

    pending: Pending
    reader: Reader
    parts: list[Part]
    results: Iterator[_Parsed]
    warnings: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """A file in several parts can still fail in a later part: it is held until it is whole,
        so that a failure never replaces what was stored."""
        return len(self.parts) > 1

    def records(self) -> Iterator[Record]:
        yield from self.reader.records(self.pending.path, self._data(), self.warnings.append)

    def _data(self) -> Iterator[Any]:
        for parsed in self.results:
            self.warnings += parsed.warnings
            if parsed.error:
                raise DocstackError(parsed.error)
            yield parsed.data


@contextmanager
def _collect_warnings(into: list[str]) -> Iterator[None]:
    """Readers' warnings travel back with the result, not to stderr."""
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


def _exit_with_parent() -> None:
    """A worker's initializer: exit as soon as the process that asked for it is gone (kill -9
    included). Otherwise workers wait forever on their task pipe, keeping the fork server alive."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Ingestor:
    def __init__(self, embedder: Embedder, chunker: Chunker, workers: int | None = None, write_batch: int = 512,
                 screen: Callable[[str], str] | None = None, executor: Executor | None = None):
        self.embedder = embedder
        self.chunker = chunker
        self.screen = screen  # the context shield: a chunk's text -> its stored verdict
        self.executor = executor or LocalExecutor(workers or min(4, os.cpu_count() or 1))
        self.write_batch = write_batch  # chunks gathered across small files before one transaction

    def recipe(self) -> Recipe:
        """This ingestor's embedding and chunking as plain data, for building it again elsewhere."""
        e, c = self.embedder, self.chunker
        if not isinstance(e, Embedder):
            raise DocstackError("only a named embedding model can run on other machines: ingest without --ray")
        return Recipe(e.name, e.batch_size, str(e.models_dir) if e.models_dir else None, e.precision,
                      c.chunk_tokens, c.overlap)

    def run(self, paths: Iterable[Path | str], store: ChunkIndex, on_progress: ProgressCallback | None = None,
            sync: bool = False) -> IngestReport:
        started = time.perf_counter()
        paths = [Path(p) for p in paths]
        report = IngestReport()
        files = discover(paths, report)
        todo = self._triage(files, store, report)
        done = len(files) - len(todo)
        batch: list[Document] = []
        for prepared in self.executor.prepare(self, todo):
            def step(s: Step, path: str = str(prepared.pending.path)) -> None:
                if on_progress:
                    on_progress(Progress(done, len(files), report.pages + s.pages, report.chunks + s.chunks,
                                         path, s.share))

            batch = self._take(prepared, store, batch, report, step)
            done += 1
            if on_progress:
                on_progress(Progress(done, len(files), report.pages, report.chunks, str(prepared.pending.path)))
        if batch:
            store.write(batch)
        if sync:
            report.removed = self._remove_missing(paths, files, store)
        store.flush()
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _take(self, prepared: Prepared, store: ChunkIndex, batch: list[Document], report: IngestReport,
              step: Callable[[Step], None]) -> list[Document]:
        """Screen and write one prepared file's documents (gathered into `batch` with small files');
        returns the batch still to write. A failed file is reported, none of it written from here."""
        held: list[Document] = []
        chunks = pages = 0
        try:
            for event in prepared.events:
                if isinstance(event, Step):
                    step(event)
                    continue
                held.append(self._screened(event))
                chunks, pages = chunks + len(event.chunks), event.pages
                if not prepared.held:
                    batch, held = self._write_when_full(store, batch + held), []
            batch = self._write_when_full(store, batch + held)
            report.files += 1
            report.pages += pages
            report.chunks += chunks
        except DocstackError as exc:
            report.fail(prepared.pending.path, str(exc))
            batch = [d for d in batch if d.path != prepared.pending.key]
        report.warnings += [{"path": str(prepared.pending.path), "warning": w} for w in prepared.warnings]
        return batch

    def _screened(self, document: Document) -> Document:
        if not self.screen:
            return document
        return dataclasses.replace(document, safety=[self.screen(c.text) for c in document.chunks])

    def _write_when_full(self, store: ChunkIndex, batch: list[Document]) -> list[Document]:
        if sum(len(d.chunks) for d in batch) < self.write_batch:
            return batch
        store.write(batch)
        return []

    def _triage(self, files: list[Path], store: ChunkIndex, report: IngestReport) -> list[Pending]:
        """The files that need parsing; unchanged files, duplicates and unreadable ones are settled here."""
        todo: list[Pending] = []
        seen_hashes: dict[str, str] = {}
        for path in files:
            try:
                info = path.stat()
                if not stat.S_ISREG(info.st_mode):
                    raise DocstackError("not a regular file")
                if info.st_size == 0:
                    raise DocstackError("empty file")
                key = str(path.resolve())
                known = store.document(key)
                if known is not None and (known.bytes, known.mtime) == (info.st_size, info.st_mtime):
                    report.unchanged += 1
                    continue
                sha = file_sha256(path)
            except DocstackError as exc:
                report.fail(path, str(exc))
                continue
            except OSError as exc:
                report.fail(path, exc.strerror or str(exc))
                continue
            if known is not None and known.sha256 == sha:
                report.unchanged += 1
                continue
            twin = seen_hashes.get(sha) or store.path_with_hash(sha)
            if twin and twin != key and Path(twin).exists():
                log.info("%s has the same content as %s; stored once", path, twin)
                report.duplicates += 1
                continue
            seen_hashes[sha] = key
            todo.append(Pending(path, key, sha, info.st_size, info.st_mtime))
        return todo

    def documents(self, file: _File) -> Iterator[Document | Step]:
        """The file's chunks with their embeddings, in parts of at most PART_CHUNKS, with a `Step`
        after each embedding step: what is done of this file so far."""
        structure = OutlineBuilder(file.reader.outline(file.pending.path))
        records: Iterable[Record] = _watched(file.records(), structure)
        pages = file.reader.pages(file.parts)
        if pages is None:  # a file in one part: its records are in memory already
            records = list(records)
            pages = max((r.page or 0 for r in records), default=0)
        pages = pages or 1
        chunks: list[Chunk] = []
        vectors = np.zeros((0, self.embedder.dimension), dtype=np.float32)
        first, total = True, 0
        for step in itertools.batched(self._chunks(records), EMBED_STEP):
            chunks += step
            embedded = self.embedder.embed([c.text for c in step])
            structure.see_chunks(step, embedded)
            vectors = np.vstack([vectors, embedded])
            total += len(step)
            if step[-1].page:
                yield Step(total, step[-1].page, min(0.99, step[-1].page / pages))  # 1: written
            while len(chunks) >= PART_CHUNKS:
                yield self._document(file.pending, pages, chunks[:PART_CHUNKS], vectors[:PART_CHUNKS], first,
                                     last=False)
                chunks, vectors, first = chunks[PART_CHUNKS:], vectors[PART_CHUNKS:], False
        if first and not chunks:
            raise DocstackError(file.reader.empty)
        last = self._document(file.pending, pages, chunks, vectors, first, last=True)
        yield dataclasses.replace(last, structure=structure.build(pages).to_json())

    def _chunks(self, records: Iterable[Record]) -> Iterator[Chunk]:
        """Chunks with offsets into their record's full text."""
        for record, offset in _bounded(records):
            for chunk in self.chunker.run([record]):
                yield dataclasses.replace(chunk, start=chunk.start + offset, end=chunk.end + offset)

    @staticmethod
    def _document(p: Pending, pages: int, chunks: list[Chunk], vectors: np.ndarray, first: bool,
                  last: bool) -> Document:
        return Document(p.key, str(p.path), p.sha256, pages, p.size, p.mtime, chunks, vectors, first, last)

    @staticmethod
    def _remove_missing(paths: list[Path], files: list[Path], store: ChunkIndex) -> int:
        """Forget documents under the synced folders that are no longer there."""
        roots = [str(p.resolve()) + os.sep for p in paths if p.is_dir()]
        present = {str(f.resolve()) for f in files}
        gone = [d.path for d in store.documents()
                if d.path not in present and any(d.path.startswith(r) for r in roots)]
        for path in gone:
            store.remove(path)
        return len(gone)


class LocalExecutor:
    """Parts parsed in worker processes on this machine, chunked and embedded in this process."""

    def __init__(self, workers: int):
        self.workers = workers

    def prepare(self, ingestor: Ingestor, todo: list[Pending]) -> Iterator[Prepared]:
        for file in self._parse(todo):
            yield Prepared(file.pending, file.held, ingestor.documents(file), file.warnings)

    def _parse(self, todo: list[Pending]) -> Iterator[_File]:
        """The files in order, each with its parts' results arriving as they are parsed. With more
        than one part in all, parts are parsed in worker processes, a bounded number ahead."""
        files = [(pending, reader_for(pending.path)) for pending in todo]
        plans = [reader.plan(pending.path, pending.size) for pending, reader in files]
        tasks = [_Task(i, part) for i, parts in enumerate(plans) for part in parts]
        if len(tasks) < 2 or self.workers < 2:
            yield from _files(files, plans, tasks, map(parse_part, (t.part for t in tasks)))
            return
        # A fork server: safe in a threaded process (the web app), started once per process;
        # its workers inherit the preloaded parsers instead of importing them each.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["docstack.ingest.readers", "pypdfium2", "bs4", "docx"])
        with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context,
                                 initializer=_exit_with_parent) as pool:
            yield from _files(files, plans, tasks, _ahead(pool, tasks, 2 * self.workers))


@functools.cache
def _rebuilt(recipe: Recipe) -> Ingestor:
    """The ingestor a recipe describes, built once per worker process (loading the model takes
    seconds; a Ray worker runs many files)."""
    embedder = Embedder(recipe.model, recipe.batch_size, Path(recipe.models_dir) if recipe.models_dir else None,
                        recipe.precision)
    chunker = Chunker(embedder.count_tokens, recipe.chunk_tokens, recipe.overlap)
    return Ingestor(embedder, chunker, workers=1)


def prepare_whole(recipe: Recipe, pending: Pending, parts: list[Part]) -> Iterator[Document | Step | Finished]:
    """One file read, chunked and embedded here, its parts parsed one after another: what a Ray
    task runs. Ends with `Finished`, carrying the warnings and the error rather than raising, so
    that they arrive as they would from a local worker."""
    file = _File(pending, reader_for(pending.path), parts, map(parse_part, parts))
    try:
        yield from _rebuilt(recipe).documents(file)
    except DocstackError as exc:
        yield Finished(file.warnings, str(exc))
        return
    yield Finished(file.warnings)


def _ahead(pool: ProcessPoolExecutor, tasks: list[_Task], window: int) -> Iterator[_Parsed]:
    """Results in task order, with at most `window` tasks submitted ahead (bounded memory)."""
    futures: deque = deque()
    for task in tasks:
        futures.append(pool.submit(parse_part, task.part))
        if len(futures) >= window:
            yield futures.popleft().result()
    while futures:
        yield futures.popleft().result()


def _files(files: list[tuple[Pending, Reader]], plans: list[list[Part]], tasks: list[_Task],
           results: Iterable[_Parsed]) -> Iterator[_File]:
    """One `_File` per file, in order, its results drawn as its records are read. A file whose
    part failed is skipped to its end by groupby."""
    grouped = itertools.groupby(zip(tasks, results), key=lambda pair: pair[0].index)
    for index, group in grouped:
        pending, reader = files[index]
        yield _File(pending, reader, plans[index], (parsed for _, parsed in group))


def _watched(records: Iterable[Record], structure: OutlineBuilder) -> Iterator[Record]:
    for record in records:
        structure.see_record(record.section, record.page, record.label)
        yield record


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
