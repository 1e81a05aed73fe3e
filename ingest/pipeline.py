"""Files in, chunks with embeddings in a collection out: read -> chunk -> embed -> store."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docstack.console import DocstackError
from docstack.ingest.chunker import Chunker
from docstack.ingest.embedder import Embedder
from docstack.ingest.readers import read_document, supported
from docstack.ingest.store import ChunkStore, Document

log = logging.getLogger(__name__)

# (files done, files total, current file)
ProgressCallback = Callable[[int, int, str], None]

WRITE_BATCH_CHUNKS = 512


@dataclass
class IngestReport:
    files: int = 0
    chunks: int = 0
    pages: int = 0
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    unchanged: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def discover(paths: Iterable[Path | str], report: IngestReport) -> list[Path]:
    """Every supported file under `paths`, in a stable order; problems go into the report."""
    found: list[Path] = []
    for arg in map(Path, paths):
        if arg.is_dir():
            for root, dirs, files in os.walk(arg):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / f for f in sorted(files) if not f.startswith(".") and supported(Path(f))]
        elif arg.is_file():
            if supported(arg):
                found.append(arg)
            else:
                report.errors.append({"path": str(arg), "error": f"unsupported file type '{arg.suffix or arg.name}'"})
        else:
            report.errors.append({"path": str(arg), "error": "no such file or directory"})
    return list(dict.fromkeys(found))


class Ingestor:
    def __init__(self, embedder: Embedder, chunker: Chunker):
        self.embedder = embedder
        self.chunker = chunker

    def run(
        self, paths: Iterable[Path | str], store: ChunkStore, on_progress: ProgressCallback | None = None
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files = discover(paths, report)
        pending: list[Document] = []
        for done, path in enumerate(files, start=1):
            try:
                doc = self._prepare(path, store)
            except (DocstackError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                report.errors.append({"path": str(path), "error": reason})
            else:
                if doc is None:
                    report.unchanged += 1
                else:
                    pending.append(doc)
                    report.files += 1
                    report.pages += doc.pages
                    report.chunks += len(doc.chunks)
                if sum(len(d.chunks) for d in pending) >= WRITE_BATCH_CHUNKS:
                    store.write(pending)
                    pending = []
            if on_progress:
                on_progress(done, len(files), str(path))
        if pending:
            store.write(pending)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _prepare(self, path: Path, store: ChunkStore) -> Document | None:
        """The document ready to store, or None when its content is already stored."""
        data = path.read_bytes()
        if not data:
            raise DocstackError("empty file")
        sha = hashlib.sha256(data).hexdigest()
        key = str(path.resolve())
        if store.document_hash(key) == sha:
            return None
        records = read_document(path)
        chunks = self.chunker.run(records)
        if not chunks:
            raise DocstackError("no text found")
        vectors = self.embedder.embed([c.text for c in chunks])
        pages = max((r.page or 0 for r in records), default=0) or 1
        return Document(key, str(path), sha, pages, len(data), chunks, vectors)

