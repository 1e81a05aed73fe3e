"""The library: named collections of documents in an index backend, and what is done to them
(ingest, sync, remove, reindex, uploads, search), as one principal. Every way into a collection goes
through `index()`, which applies the collection's grant (docstack.access.grants): a collection the
principal may not read is reported exactly as a missing one."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from docstack.access.grants import STATE_KEY, STATE_KIND, Grant
from docstack.access.identity import LOCAL, Principal
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
                 screen: Callable[[str], str] | None = None, reranker: CrossEncoderReranker | None = None,
                 principal: Principal = LOCAL):
        self.settings = settings
        self.backend = backend
        self.embedder = embedder
        self.screen = screen  # the context shield: a chunk's text -> its verdict, stored with it
        self.reranker = reranker
        self.principal = principal
        self._open: dict[str, ChunkIndex] = {}
        self._labels = PageLabels()
        self._lock = threading.Lock()  # the web app opens collections from several script threads

    def as_user(self, principal: Principal) -> Library:
        """This library as `principal`, sharing its open indexes (the web app serves many users
        from one process)."""
        view = copy.copy(self)
        view.principal = principal
        return view

    def index(self, collection: str | None = None, create: bool = False, write: bool = False) -> ChunkIndex:
        """The collection's index, up to date with what other processes wrote, if the principal
        may read it (and change it, with `write` or `create`). Only admins create collections."""
        name = self._name(collection)
        if not self._exists(name) and not (create and self.principal.is_admin):
            raise self._missing(name)
        index = self._open_index(name)
        if self.principal.is_admin:
            if create and self.settings.identity and index.get_state(STATE_KIND, STATE_KEY) is None:
                self._put_grant(index, Grant(owner=self.principal.user))
            return index
        grant = self._grant(index)
        if not grant.can_read(self.principal):
            raise self._missing(name)
        if (write or create) and not grant.can_write(self.principal):
            raise DocstackError(f"you may read collection '{name}' but not change it: ask its owner or an admin")
        return index

    def access(self, collection: str | None = None) -> Grant:
        """Who may read and change the collection."""
        return self._grant(self.index(collection))

    def grant(self, collection: str | None, grant: Grant) -> Grant:
        """Set who may read and change the collection (its owner and admins only); a grant that
        names no owner keeps the current one."""
        name = self._name(collection)
        index = self.index(name)
        current = self._grant(index)
        if not self._owns(current):
            raise DocstackError(f"only the owner of collection '{name}' or an admin may change who reads it")
        if grant.owner is None:
            grant = replace(grant, owner=current.owner)
        self._put_grant(index, grant)
        return grant

    def collections(self) -> dict[str, IndexStats]:
        """The collections the principal may read (the others are not mentioned)."""
        found = {}
        for name in self.backend.names():
            try:
                found[name] = self.index(name).stats()
            except DocstackError:
                continue
        return found

    def create(self, collection: str) -> None:
        self.index(collection, create=True)

    def delete(self, collection: str) -> None:
        name = self._name(collection)
        if not self._owns(self._grant(self.index(name, write=True))):
            raise DocstackError(f"only the owner of collection '{name}' or an admin may delete it")
        self._open_index(name).close()
        with self._lock:
            del self._open[name]
        self.backend.delete(name)

    def _exists(self, name: str) -> bool:
        with self._lock:
            return name in self._open or self.backend.exists(name)

    def _open_index(self, name: str) -> ChunkIndex:
        """The index, opened once per process, without asking who may read it (internal use)."""
        with self._lock:
            if name in self._open:
                self._open[name].refresh()
            else:
                self._open[name] = self.backend.open(name, self.embedder.name, self.embedder.dimension)
            return self._open[name]

    def _grant(self, index: ChunkIndex) -> Grant:
        return Grant.from_json(index.get_state(STATE_KIND, STATE_KEY))

    @staticmethod
    def _put_grant(index: ChunkIndex, grant: Grant) -> None:
        index.put_state(STATE_KIND, STATE_KEY, grant.to_json())
        index.flush()

    def _owns(self, grant: Grant) -> bool:
        return self.principal.is_admin or (grant.owner is not None and grant.owner == self.principal.user)

    def _missing(self, name: str) -> DocstackError:
        """The same words whether the collection is missing or hidden from the principal."""
        if self.settings.identity and not self.principal.is_admin:
            return DocstackError(f"collection '{name}' does not exist; ask an admin to create it or to share it "
                                 "with your team")
        return DocstackError(f"collection '{name}' does not exist in {self.settings.index_location}; "
                             f"add documents with `docstack ingest PATH --collection {name}`")

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
        return ingestor.run(paths, self.index(collection, create=True, write=True), on_progress, sync=sync)

    def remove(self, paths: Iterable[Path | str], collection: str | None = None) -> list[str]:
        """Forget documents by file path, or all documents under a folder; returns their paths."""
        index = self.index(collection, write=True)
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
        self.index(name, write=True)
        staging = f".{name}.reindex"
        self.backend.delete(staging)
        # The staging copy is internal: built as the library itself, whoever asked for the rebuild.
        report = self.as_user(LOCAL).ingest(self.backend.document_paths(name), collection=staging,
                                            on_progress=on_progress)
        if self.backend.exists(staging):
            # Jobs, cached results and the grant are keyed by content or name, which did not change.
            _copy_state(self._open_index(name), self._open_index(staging))
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
        if not self.principal.is_admin:
            raise DocstackError("only an admin may copy a collection to another index")
        source = self.index(name)
        copy = target.open(name, source.model, source.dimension)
        records = source.documents()
        todo = [r for r in records if (there := copy.document(r.path)) is None
                or (there.sha256, there.chunks) != (r.sha256, r.chunks)]
        # Copying more than the target holds: its search structures are cheaper built once at the end.
        bulk = copy.bulk() if sum(r.chunks for r in todo) >= copy.stats().chunks else contextlib.nullcontext()
        chunks = 0
        with bulk:
            for record in todo:
                document = _as_document(record, source.chunks(record.path), source.structure(record.path))
                copy.write([document])
                chunks += len(document.chunks)
        _copy_state(source, copy)
        copy.flush()
        return MigrationReport(name, where, len(todo), chunks, len(records) - len(todo),
                               round(time.monotonic() - start, 2))

    def save_upload(self, name: str, data: bytes, collection: str | None = None) -> Path:
        """Keep an uploaded file under `home/uploads/<collection>/` so it can be ingested like any
        other file (and re-ingested, and previewed, later)."""
        collection = self._name(collection)
        self.index(collection, create=True, write=True)  # checks the name and the grant before a folder is made
        filename = Path(name.replace("\\", "/")).name.strip()
        # Control characters (NUL, line breaks, terminal escapes) would break the file system call,
        # a log line or a terminal: such a name is refused, shown escaped.
        if not filename or filename.startswith(".") or any(unicodedata.category(c) == "Cc" for c in filename):
            raise DocstackError(f"{ascii(name)} is not a usable file name")
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
