"""The library: named collections of documents in an index backend, and what is done to them
(ingest, sync, remove, reindex, uploads, search)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from docstack.console import DocstackError
from docstack.index.base import Chunk, ChunkIndex, Document, DocumentRecord, Filters, IndexBackend, IndexStats
from docstack.index.embedder import Embedder
from docstack.ingest.chunker import Chunker
from docstack.ingest.pipeline import IngestReport, Ingestor, ProgressCallback
from docstack.ingest.ray_executor import RayExecutor
from docstack.rag.rerank import CrossEncoderReranker
from docstack.rag.retrieve import Hit, Mode, PageLabels, Retrieved, Retriever
from docstack.settings import Settings

_COLLECTION_NAME = re.compile(r"^\.?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a leading dot: internal


@dataclass(frozen=True)
class DocumentInfo:
    """A document as a collection records it."""

    path: str
    source: str
    pages: int
    chunks: int
    bytes: int
    ingested_at: datetime

    @property
    def name(self) -> str:
        return Path(self.source).name


@dataclass(frozen=True)
class MigrationReport:
    """`docstack migrate`: what was copied to the target index, and what was there already."""

    collection: str
    target: str
    documents: int
    chunks: int
    unchanged: int
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


class Library:
    def __init__(self, settings: Settings, backend: IndexBackend, embedder: Embedder,
                 screen: Callable[[str], str] | None = None, reranker: CrossEncoderReranker | None = None):
        self.settings = settings
        self.backend = backend
        self.embedder = embedder
        self.screen = screen  # the context shield: a chunk's text -> its verdict, stored with it
        self.reranker = reranker
        self._open: dict[str, ChunkIndex] = {}
        self._labels = PageLabels()
        self._lock = threading.Lock()  # the web app opens collections from several script threads

    def index(self, collection: str | None = None, create: bool = False) -> ChunkIndex:
        """The collection's index, up to date with what other processes wrote."""
        name = self._name(collection)
        with self._lock:
            if name in self._open:
                self._open[name].refresh()
                return self._open[name]
            if not create and not self.backend.exists(name):
                raise DocstackError(f"collection '{name}' does not exist in {self.settings.index_location}; "
                                    f"add documents with `docstack ingest PATH --collection {name}`")
            self._open[name] = self.backend.open(name, self.embedder.name, self.embedder.dimension)
            return self._open[name]

    def collections(self) -> dict[str, IndexStats]:
        return {name: self.index(name).stats() for name in self.backend.names()}

    def create(self, collection: str) -> None:
        self.index(collection, create=True)

    def delete(self, collection: str) -> None:
        name = self._name(collection)
        self.index(name).close()
        with self._lock:
            del self._open[name]
        self.backend.delete(name)

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return [DocumentInfo(d.path, d.source, d.pages, d.chunks, d.bytes, datetime.fromtimestamp(d.ingested_at))
                for d in self.index(collection).documents()]

    def size_bytes(self, collection: str | None = None) -> int:
        return self.index(collection).size_bytes()

    def ingest(self, paths: Iterable[Path | str], collection: str | None = None,
               on_progress: ProgressCallback | None = None, sync: bool = False) -> IngestReport:
        """Add files and folders; with `sync`, also forget files gone from the given folders."""
        chunker = Chunker(self.embedder.count_tokens, self.settings.chunk_tokens, self.settings.chunk_overlap)
        executor = RayExecutor(self.settings.ray_address) if self.settings.ray_address else None
        ingestor = Ingestor(self.embedder, chunker, write_batch=self.settings.write_batch, screen=self.screen,
                            executor=executor)
        return ingestor.run(paths, self.index(collection, create=True), on_progress, sync=sync)

    def remove(self, paths: Iterable[Path | str], collection: str | None = None) -> list[str]:
        """Forget documents by file path, or all documents under a folder; returns their paths."""
        index = self.index(collection)
        wanted = [str(Path(p).resolve()) for p in paths]
        gone = [d.path for d in index.documents()
                if any(d.path == w or d.path.startswith(w.rstrip(os.sep) + os.sep) for w in wanted)]
        for path in gone:
            index.remove(path)
        index.flush()
        return gone

    def reindex(self, collection: str | None = None, on_progress: ProgressCallback | None = None) -> IngestReport:
        """Rebuild a collection from its source files with the current embedding model and chunking;
        it goes live only once rebuilt."""
        name = self._name(collection)
        if not self.backend.exists(name):
            raise DocstackError(f"collection '{name}' does not exist")
        staging = f".{name}.reindex"
        self.backend.delete(staging)
        report = self.ingest(self.backend.document_paths(name), collection=staging, on_progress=on_progress)
        if self.backend.exists(staging):
            _copy_state(self.index(name), self.index(staging))  # jobs and cached results are keyed by content
        with self._lock:  # not closed: another thread may still be reading the old one
            self._open.pop(name, None)
            self._open.pop(staging, None)
        self.backend.replace(name, staging)
        return report

    def migrate(self, target: IndexBackend, where: str, collection: str | None = None) -> MigrationReport:
        """Copy a collection to another backend as it is stored: chunks, vectors and the context
        shield's verdicts, nothing embedded or screened again. One transaction per document; a
        document already there with the same content is left as it is, so an interrupted copy
        resumes where it stopped."""
        start = time.monotonic()
        name = self._name(collection)
        source = self.index(name)
        copy = target.open(name, source.model, source.dimension)
        copied = chunks = unchanged = 0
        for record in source.documents():
            there = copy.document(record.path)
            if there is not None and (there.sha256, there.chunks) == (record.sha256, record.chunks):
                unchanged += 1
                continue
            document = _as_document(record, source.chunks(record.path), source.structure(record.path))
            copy.write([document])
            copied, chunks = copied + 1, chunks + len(document.chunks)
        _copy_state(source, copy)
        copy.flush()
        return MigrationReport(name, where, copied, chunks, unchanged, round(time.monotonic() - start, 2))

    def save_upload(self, name: str, data: bytes, collection: str | None = None) -> Path:
        """Keep an uploaded file under `home/uploads/<collection>/` so it can be ingested like any
        other file (and re-ingested, and previewed, later)."""
        collection = self._name(collection)
        self.create(collection)  # checks the name before it becomes a folder
        filename = Path(name.replace("\\", "/")).name.strip()
        if not filename or filename.startswith("."):
            raise DocstackError(f"'{name}' is not a usable file name")
        folder = self.settings.home / "uploads" / collection
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / filename
        # Unique per process and host: app replicas share the uploads folder.
        partial = folder / f".{filename}.{socket.gethostname()}.{os.getpid()}.part"
        partial.write_bytes(data)
        os.replace(partial, target)
        return target

    def ingest_uploads(self, files: Sequence[tuple[str, bytes]], collection: str | None = None,
                       on_progress: ProgressCallback | None = None) -> tuple[IngestReport, list[Path]]:
        """Save uploaded (name, content) pairs, then ingest them like any files; a file that fails
        is reported and not kept. Returns the report and where each file was saved."""
        saved, unusable = [], []
        for name, data in files:
            try:
                saved.append(self.save_upload(name, data, collection))
            except DocstackError as exc:
                unusable.append({"path": name, "error": str(exc)})
        report = self.ingest(saved, collection, on_progress)
        for error in report.errors:
            if Path(error["path"]) in saved:
                Path(error["path"]).unlink(missing_ok=True)
        report.errors = unusable + report.errors
        return report, saved

    def retriever(self, collection: str | None = None) -> Retriever:
        return Retriever(self.index(collection), self.embedder, self.reranker, self._labels)

    def retrieve(self, query: str, collection: str | None = None, k: int | None = None, mode: Mode | None = None,
                 filters: Filters | None = None) -> Retrieved:
        if not query.strip():
            raise DocstackError("the query is empty")
        return self.retriever(collection).run(query, k or self.settings.top_k, mode or self.settings.search_mode,
                                              filters)

    def search(self, query: str, collection: str | None = None, k: int | None = None, mode: Mode | None = None,
               filters: Filters | None = None) -> list[Hit]:
        return self.retrieve(query, collection, k, mode, filters).hits

    def _name(self, collection: str | None) -> str:
        name = collection or self.settings.collection
        if not _COLLECTION_NAME.match(name):
            raise DocstackError(f"collection name '{name}' is not valid: use letters, digits, '.', '_' or '-'")
        return name


def _as_document(record: DocumentRecord, stored: Sequence, structure: dict | None) -> Document:
    """A stored document, ready to write elsewhere as it was."""
    return Document(record.path, record.source, record.sha256, record.pages, record.bytes, record.mtime,
                    [Chunk(c.text, c.page, c.section, c.start, c.end) for c in stored],
                    np.vstack([c.vector for c in stored]) if stored else np.zeros((0, 0), dtype=np.float32),
                    safety=[c.safety for c in stored], structure=structure)


def _copy_state(source: ChunkIndex, target: ChunkIndex) -> None:
    """Long jobs and their cached results, to a rebuilt or copied collection (they are keyed by the
    documents' content, which did not change)."""
    for kind in source.state_kinds():
        for key, value in source.states(kind).items():
            target.put_state(kind, key, value)
