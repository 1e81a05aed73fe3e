"""Search latency at scale: `Retriever.run` (what `docstack search` does) on a collection of
100,000 and 1,000,000 synthetic chunks, on one core, one query at a time.

    .venv/bin/python bench/bench_search.py [--sizes 100000 1000000] [--queries 200]

Each chunk has ~120 words drawn from a Zipf-distributed vocabulary of 50,000 words (so the FTS5
postings look like real text: a few very common words, a long tail) and a vector from
bench_index's generator fitted to all-MiniLM-L6-v2 embeddings (so the IVF index is as hard as on
real data). Queries are 4-8 words: one or two common ones and the rest content words of middling
frequency, embedded with the real model on the real query path. Per mode (keyword, dense, hybrid) it prints p50/p95 latency in ms: the whole
search, query embedding included. Targets (issue 5): p50 under 50 ms at 100k, under 200 ms at 1M.
Building the 1M collection takes several minutes and about 3 GB of disk in a temporary folder."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: FAISS and BLAS read this at import

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import SyntheticEmbeddings  # noqa: E402
from docstack import Settings  # noqa: E402
from docstack.index.base import Chunk, Document  # noqa: E402
from docstack.index.embedder import Embedder  # noqa: E402
from docstack.index.sqlite.store import SqliteIndex  # noqa: E402
from docstack.rag.retrieve import MODES, Retriever  # noqa: E402

VOCABULARY = 50_000
WORDS_PER_CHUNK = 120
CHUNKS_PER_DOC = 1000


def log(message: str) -> None:
    print(f"[bench_search {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def words(rng: np.random.Generator, count: int) -> np.ndarray:
    """Word ids, Zipf-distributed (rank r drawn with probability ~ 1/r)."""
    return np.minimum(rng.zipf(1.1, count), VOCABULARY) - 1


def question(rng: np.random.Generator, vocab: list[str]) -> str:
    """4-8 words like a user's question after stopwords go: one or two common words (rank < 100)
    and content words (rank 100-20,000), never all drawn from the head of the distribution."""
    common = rng.integers(0, 100, int(rng.integers(1, 3)))
    content = rng.integers(100, 20_000, int(rng.integers(3, 7)))
    return " ".join(vocab[w] for w in np.concatenate([common, content]))


def vocabulary(rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(letters[rng.integers(0, 26, rng.integers(3, 10))]) for _ in range(VOCABULARY)]


def build(folder: Path, n: int, vocab: list[str], rng: np.random.Generator, dimension: int, model: str) -> SqliteIndex:
    store = SqliteIndex(folder, model, dimension)
    vectors = SyntheticEmbeddings(rng).vectors(n)
    started = time.perf_counter()
    for j in range(n // CHUNKS_PER_DOC):
        ids = words(rng, CHUNKS_PER_DOC * WORDS_PER_CHUNK).reshape(CHUNKS_PER_DOC, WORDS_PER_CHUNK)
        texts = [" ".join(vocab[w] for w in row) for row in ids]
        store.write([Document(
            path=f"/bench/doc-{j}.txt", source=f"doc-{j}.txt", sha256=f"{j:064x}", pages=CHUNKS_PER_DOC // 10,
            bytes=sum(len(t) + 1 for t in texts), mtime=1_700_000_000.0 + j,
            chunks=[Chunk(t, i // 10 + 1, None, 0, len(t)) for i, t in enumerate(texts)],
            vectors=vectors[j * CHUNKS_PER_DOC:(j + 1) * CHUNKS_PER_DOC],
        )])
        if j % 100 == 99:
            log(f"  {(j + 1) * CHUNKS_PER_DOC:,} chunks written ({time.perf_counter() - started:.0f}s)")
    store.flush()
    return store


def measure(store: SqliteIndex, embedder: Embedder, queries: list[str]) -> dict:
    retriever = Retriever(store, embedder)
    results = {}
    for mode in MODES:
        for q in queries[:5]:  # warm the caches (and the lazily opened FAISS index)
            retriever.run(q, 5, mode)
        times = []
        for q in queries:
            t0 = time.perf_counter()
            retriever.run(q, 5, mode)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        results[mode] = {"p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    vocab = vocabulary(rng)
    settings = Settings()
    embedder = Embedder(settings.embedding_model)
    queries = [question(rng, vocab) for _ in range(args.queries)]
    report = {"queries": args.queries, "cpu_threads": 1, "k": 5, "sizes": {}}
    with threadpool_limits(1), tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for n in args.sizes:
            log(f"building a collection of {n:,} chunks")
            t0 = time.perf_counter()
            store = build(Path(tmp) / f"c{n}", n, vocab, rng, embedder.dimension, embedder.name)
            built = time.perf_counter() - t0
            log(f"measuring {args.queries} queries per mode at {n:,}")
            report["sizes"][n] = {"build_s": round(built, 1), "index": "ivf" if store.index.is_ivf else "flat",
                                  **measure(store, embedder, queries)}
            store.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
