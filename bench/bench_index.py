"""Vector index benchmark: IVF recall@10 against exact search, and the cost of adding to a big store.

    .venv/bin/python bench/bench_index.py [--quick] [--out FILE]

Prints one JSON object (progress goes to stderr):

* ``ann_recall``: for 100k and 1M vectors (100k and 200k with ``--quick``), `VectorIndex.build` on
  clustered synthetic unit vectors, its top-10 against exact (`faiss.IndexFlatIP`) top-10 for 500
  queries near the data, build time, and one-core, one-query-at-a-time latency of both; then a
  sweep of probe fractions to show which one reaches recall@10 >= 0.95 at the lowest latency.
* ``add_1000_to_100k``: `ChunkStore.write` of one 1,000-chunk document into a 100,000-chunk store
  (vectors precomputed, so no embedding time), then the re-open that reconciles the FAISS cache,
  and an explicit `flush()`."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docstack.ingest import vector_index  # noqa: E402
from docstack.ingest.chunker import Chunk  # noqa: E402
from docstack.ingest.store import ChunkStore, Document  # noqa: E402
from docstack.ingest.vector_index import VectorIndex  # noqa: E402

DIM = 384  # all-MiniLM-L6-v2
K = 10
QUERIES = 500
TARGET_RECALL = 0.95
SWEEP = (1 / 64, 1 / 32, 1 / 16, 1 / 8)

# The synthetic corpus. Uniform random vectors on the sphere have no structure, so every IVF list
# is as good as any other and recall looks far worse than on real embeddings; real sentence
# embeddings are clustered, and the clusters are themselves grouped (chunks of one manual, manuals
# on one subject). So: ~N/2000 random unit "topic" directions; ~N/100 cluster centres, each its
# topic plus Gaussian noise of norm CENTRE_SPREAD (1.0: centre-topic cosine ~0.71, sibling
# clusters ~0.5, unrelated clusters ~0.0, as unrelated MiniLM sentences are); cluster sizes
# lognormal (sigma 0.75) around 100, since real topics are unequal, which also unbalances the IVF
# lists as real data does; each vector its centre plus Gaussian noise of norm drawn per cluster
# from CLUSTER_SPREAD, normalised. Spread 0.4-1.0 gives within-cluster cosines 1/(1+s^2) of
# 0.5-0.86, and measured nearest-neighbour cosines of ~0.6-0.86 (p10-p90; reported as
# `data_neighbour_cos`), the 0.5-0.9 typical of all-MiniLM-L6-v2 neighbours.
TOPIC_SIZE = 2000
CLUSTER_SIZE = 100
CENTRE_SPREAD = 1.0
CLUSTER_SPREAD = (0.4, 1.0)
SIZE_SIGMA = 0.75
# Queries are data vectors plus Gaussian noise of this norm, normalised: cosine ~0.8 to the
# vector they came from, like a question to the passage that answers it, never the vector itself.
QUERY_NOISE = 0.75


def log(message: str) -> None:
    print(f"[bench_index {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def normalise(rows: np.ndarray) -> np.ndarray:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def noise(rng: np.random.Generator, rows: int, norm: float | np.ndarray = 1.0) -> np.ndarray:
    """Isotropic Gaussian rows of about the given norm (float32)."""
    out = rng.standard_normal((rows, DIM), dtype=np.float32)
    out *= np.asarray(norm, dtype=np.float32).reshape(-1, 1) / np.float32(math.sqrt(DIM))
    return out


def clustered_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """n clustered unit vectors (see the comment above), generated in blocks into one array."""
    topics = normalise(rng.standard_normal((max(1, n // TOPIC_SIZE), DIM), dtype=np.float32))
    clusters = max(1, n // CLUSTER_SIZE)
    centres = normalise(topics[rng.integers(0, len(topics), clusters)] + noise(rng, clusters, CENTRE_SPREAD))
    weights = rng.lognormal(0.0, SIZE_SIGMA, clusters)
    member_of = rng.choice(clusters, n, p=weights / weights.sum())
    spread = rng.uniform(*CLUSTER_SPREAD, clusters).astype(np.float32)
    vectors = np.empty((n, DIM), dtype=np.float32)
    block = 65_536
    for start in range(0, n, block):
        which = member_of[start : start + block]
        rows = noise(rng, len(which), spread[which])
        rows += centres[which]
        vectors[start : start + len(which)] = normalise(rows)
    return vectors


def timed_search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ids, searching one query at a time, and each search's latency in ms."""
    for q in queries[:20]:  # warm caches and faiss' lazily built structures
        index.search(q.reshape(1, -1), k)
    ids = np.empty((len(queries), k), dtype=np.int64)
    ms = np.empty(len(queries))
    for i, q in enumerate(queries):
        q = q.reshape(1, -1)
        started = time.perf_counter()
        _, found = index.search(q, k)
        ms[i] = (time.perf_counter() - started) * 1000
        ids[i] = found[0]
    return ids, ms


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f, t)) / truth.shape[1] for f, t in zip(found, truth)]))


def latency(ms: np.ndarray) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def percentiles(values: np.ndarray) -> dict:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {"p10": round(float(p10), 3), "p50": round(float(p50), 3), "p90": round(float(p90), 3)}


def bench_ann(n: int, seed: int) -> dict:
    threads = faiss.omp_get_max_threads()
    rng = np.random.default_rng(seed)
    log(f"ann n={n}: generating vectors")
    started = time.perf_counter()
    vectors = clustered_vectors(n, rng)
    generate_s = time.perf_counter() - started
    sources = rng.choice(n, QUERIES, replace=False)
    queries = normalise(vectors[sources] + noise(rng, QUERIES, QUERY_NOISE))

    log(f"ann n={n}: VectorIndex.build ({threads} threads)")
    started = time.perf_counter()
    built = VectorIndex.build(DIM, np.arange(n, dtype=np.int64), vectors)
    build_s = time.perf_counter() - started
    if not built.is_ivf:
        raise SystemExit(f"VectorIndex.build gave a flat index for {n} vectors; IVF_THRESHOLD changed?")
    ivf = built.index

    exact = faiss.IndexFlatIP(DIM)  # ids are positions, the same ids given to build
    exact.add(vectors)
    # How clustered the data is: cosine of sample vectors to their nearest other vector (batched).
    sample = rng.choice(n, QUERIES, replace=False)
    scores, _ = exact.search(vectors[sample], 2)
    neighbour_cos = scores[:, 1]
    source_cos = np.einsum("ij,ij->i", queries, vectors[sources])
    del vectors, scores
    gc.collect()

    faiss.omp_set_num_threads(1)
    try:
        log(f"ann n={n}: exact search, one query at a time")
        truth, exact_ms = timed_search(exact, queries, K)
        query_top10_cos = np.einsum("ij,ij->i", queries, exact.reconstruct_batch(truth[:, -1]))
        default_nprobe = ivf.nprobe
        sweep = []
        for fraction in sorted(set(SWEEP) | {vector_index.IVF_PROBE_FRACTION}):
            ivf.nprobe = max(1, int(ivf.nlist * fraction))
            log(f"ann n={n}: IVF nprobe={ivf.nprobe}/{ivf.nlist}")
            found, ms = timed_search(ivf, queries, K)
            sweep.append({"probe_fraction": round(fraction, 5), "nprobe": ivf.nprobe,
                          "recall_at_10": round(recall(found, truth), 4), **latency(ms)})
        ivf.nprobe = default_nprobe
    finally:
        faiss.omp_set_num_threads(threads)
    default = next(s for s in sweep if s["nprobe"] == default_nprobe)
    meeting = [s for s in sweep if s["recall_at_10"] >= TARGET_RECALL]
    best = min(meeting, key=lambda s: s["p50_ms"]) if meeting else None
    result = {
        "n": n,
        "nlist": ivf.nlist,
        "nprobe": default_nprobe,
        "probe_fraction": round(vector_index.IVF_PROBE_FRACTION, 5),
        "recall_at_10": default["recall_at_10"],
        "meets_target": default["recall_at_10"] >= TARGET_RECALL,
        "generate_s": round(generate_s, 2),
        "build_s": round(build_s, 2),
        "build_threads": threads,
        "ivf_latency": {"p50_ms": default["p50_ms"], "p95_ms": default["p95_ms"]},
        "exact_latency": latency(exact_ms),
        "search_threads": 1,
        "sweep": sweep,
        "fastest_fraction_meeting_target": best["probe_fraction"] if best else None,
        "data_neighbour_cos": percentiles(neighbour_cos),
        "query_to_source_cos": percentiles(source_cos),
        "query_10th_neighbour_cos": percentiles(query_top10_cos),
    }
    del ivf, built, exact
    gc.collect()
    return result


# -- ChunkStore ------------------------------------------------------------------------------
def unit_rows(rng: np.random.Generator, rows: int) -> np.ndarray:
    return normalise(rng.standard_normal((rows, DIM), dtype=np.float32))


def document(j: int, chunks: int, rng: np.random.Generator) -> Document:
    texts = [f"chunk {i} of doc {j}" for i in range(chunks)]
    values = dict(
        path=f"/bench/doc-{j}.txt", source=f"doc-{j}.txt", sha256=f"{j:064x}", pages=chunks // 10,
        bytes=sum(len(t) + 1 for t in texts), mtime=1_700_000_000.0 + j,
        chunks=[Chunk(t, i // 10 + 1, None, 0, len(t)) for i, t in enumerate(texts)],
        vectors=unit_rows(rng, chunks),
    )
    # Document's fields are still changing (mtime, first/last parts): pass those it has.
    names = {f.name for f in dataclasses.fields(Document)}
    return Document(**{k: v for k, v in values.items() if k in names})


def saved_generation(folder: Path) -> int:
    saved = [int(p.stem.split("-")[1]) for p in folder.glob("index-*.faiss")]
    return max(saved, default=-1)


def cached_index(folder: Path) -> dict:
    """What the saved FAISS cache file holds: the open starts from it."""
    generation = saved_generation(folder)
    if generation < 0:
        return {"generation": -1}
    index = faiss.read_index(str(folder / f"index-{generation}.faiss"))
    return {"generation": generation, "kind": "ivf" if isinstance(index, faiss.IndexIVF) else "flat",
            "vectors": index.ntotal}


def bench_store(total: int, per_doc: int, reps: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        folder = Path(tmp) / "collection"
        store = ChunkStore(folder, "bench", DIM)
        log(f"store: writing {total} chunks as {total // per_doc} documents of {per_doc}")
        setup_writes = []
        started = time.perf_counter()
        for j in range(total // per_doc):
            doc = document(j, per_doc, rng)
            t0 = time.perf_counter()
            store.write([doc])
            setup_writes.append(time.perf_counter() - t0)
        setup_s = time.perf_counter() - started
        slowest = int(np.argmax(setup_writes))
        index_kind = "ivf" if store.index.is_ivf else "flat"

        log(f"store: timing {reps} writes of {per_doc} new chunks")
        docs = [document(10_000 + r, per_doc, rng) for r in range(reps)]  # vectors made before timing
        writes = []
        for doc in docs:
            before = saved_generation(folder)
            t0 = time.perf_counter()
            store.write([doc])
            seconds = time.perf_counter() - t0
            writes.append({"seconds": round(seconds, 4), "saved_index": saved_generation(folder) != before})
        seconds = [w["seconds"] for w in writes]
        vectors_after = len(store)
        generation = store.generation
        cached = cached_index(folder)
        store.close()
        del store
        gc.collect()

        log("store: re-open (reconciles the FAISS cache with SQLite)")
        t0 = time.perf_counter()
        store = ChunkStore(folder, "bench", DIM)
        reopen_s = time.perf_counter() - t0
        reconciled = store._unsaved  # changes the open applied to the cached index
        reopened_kind = "ivf" if store.index.is_ivf else "flat"
        t0 = time.perf_counter()
        store.flush()
        flush_s = time.perf_counter() - t0
        probe = store.vectors([1])[0]
        top = store.search(probe, 1)

        # The same again from a saved cache of the current kind: reconciling is then only catching up.
        more = [document(20_000 + r, per_doc, rng) for r in range(reps)]
        for doc in more:
            store.write([doc])
        cached_again = cached_index(folder)
        store.close()
        del store
        gc.collect()
        t0 = time.perf_counter()
        store = ChunkStore(folder, "bench", DIM)
        reopen_again_s = time.perf_counter() - t0
        reconciled_again = store._unsaved
        reopened_again_kind = "ivf" if store.index.is_ivf else "flat"
        t0 = time.perf_counter()
        store.flush()
        flush_again_s = time.perf_counter() - t0
        store.close()
        del store
        gc.collect()

        t0 = time.perf_counter()
        store = ChunkStore(folder, "bench", DIM)
        clean_reopen_s = time.perf_counter() - t0
        store.close()
        db_mb = sum(p.stat().st_size for p in folder.glob("chunks.sqlite*")) / 2**20
        index_mb = sum(p.stat().st_size for p in folder.glob("index-*.faiss")) / 2**20
    return {
        "chunks_before": total,
        "chunks_per_write": per_doc,
        "index": index_kind,
        "write_median_s": round(statistics.median(seconds), 4),
        "write_max_s": round(max(seconds), 4),
        "meets_target": max(seconds) < 1.0,
        "writes": writes,
        "vectors_after": vectors_after,
        "reopen_s": round(reopen_s, 3),
        "reopen_reconciled_changes": reconciled,
        "reopen_from": {**cached, "store_generation": generation, "index_after_reopen": reopened_kind,
                        "rebuilt_on_open": cached.get("kind") != reopened_kind},
        "flush_s": round(flush_s, 3),
        "reopen_from_saved_ivf": {"seconds": round(reopen_again_s, 3), "reconciled_changes": reconciled_again,
                                  "cached": cached_again, "index_after_reopen": reopened_again_kind,
                                  "flush_s": round(flush_again_s, 3)},
        "clean_reopen_s": round(clean_reopen_s, 3),
        "search_after_reopen_ok": bool(top and top[0][0] == 1),
        "setup_s": round(setup_s, 1),
        "setup_write_median_s": round(statistics.median(setup_writes), 4),
        "setup_slowest_write": {"document": slowest, "chunks_after": (slowest + 1) * per_doc,
                                "seconds": round(setup_writes[slowest], 2)},
        "sqlite_mb": round(db_mb, 1),
        "index_file_mb": round(index_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k and 200k vectors instead of 100k and 1M")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = (100_000, 200_000) if args.quick else (100_000, 1_000_000)
    started = time.perf_counter()
    result = {
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "faiss_threads": faiss.omp_get_max_threads(),
                    "faiss": faiss.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "settings": {"ivf_threshold": vector_index.IVF_THRESHOLD,
                     "ivf_probe_fraction": round(vector_index.IVF_PROBE_FRACTION, 5),
                     "queries": QUERIES, "k": K, "target_recall_at_10": TARGET_RECALL,
                     "query_noise": QUERY_NOISE, "cluster_spread": list(CLUSTER_SPREAD),
                     "centre_spread": CENTRE_SPREAD, "cluster_size": CLUSTER_SIZE, "topic_size": TOPIC_SIZE},
        "ann_recall": {},
    }
    for n in sizes:
        result["ann_recall"][str(n)] = bench_ann(n, args.seed + n)
    result["add_1000_to_100k"] = bench_store(100_000, 1_000, 5, args.seed)
    result["total_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
