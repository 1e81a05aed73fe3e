"""pgvector's HNSW recall@10 against exact search for a few build parameters, on bench_index.py's
synthetic MiniLM-shaped vectors: what chose docstack's defaults (m=32, ef_construction=128).

    .venv/bin/python bench/bench_hnsw_params.py [--n 100000] [--params 16,64 24,200 32,128]
        [--ef-search 40 100 200]

Each setting: a bare table (id, vector) loaded with COPY, the HNSW index built once over it
(parallel workers, in memory), then 100 near-data queries (a chunk's vector plus an offset
shaped like the corpus, as bench_index.py asks FAISS) at each ef_search. Prints one JSON line per
setting: build seconds, and per ef_search the recall and the mean milliseconds of one query."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import SyntheticEmbeddings  # noqa: E402
from tests.pg_server import PostgresServer  # noqa: E402

K, QUERIES = 10, 100


def measure(conn: psycopg.Connection, vectors: np.ndarray, m: int, efc: int, efs: list[int], queries) -> dict:
    conn.execute("DROP TABLE IF EXISTS t")
    conn.execute(f"CREATE TABLE t (id int PRIMARY KEY, e vector({vectors.shape[1]}))")
    with conn.cursor().copy("COPY t (id, e) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "vector"])
        for i, row in enumerate(vectors):
            copy.write_row((i, row))
    started = time.perf_counter()
    conn.execute(f"CREATE INDEX ON t USING hnsw (e vector_cosine_ops) WITH (m = {m}, ef_construction = {efc})")
    result = {"m": m, "ef_construction": efc, "build_s": round(time.perf_counter() - started, 1)}
    exact = [set(np.argpartition(-(vectors @ q), K)[:K].tolist()) for q in queries]
    for ef in efs:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        found, started = 0, time.perf_counter()
        for q, truth in zip(queries, exact):
            rows = conn.execute("SELECT id FROM t ORDER BY e <=> %s LIMIT %s", (q, K)).fetchall()
            found += len(truth & {r[0] for r in rows})
        result[f"ef_search_{ef}"] = {"recall@10": round(found / (K * len(queries)), 3),
                                     "ms": round((time.perf_counter() - started) * 1000 / len(queries), 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--params", nargs="+", default=["16,64", "24,200", "32,128"])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generator = SyntheticEmbeddings(np.random.default_rng(args.seed))
    vectors = generator.vectors(args.n)
    queries = generator.queries(vectors, QUERIES)[0]
    server = PostgresServer({"shared_buffers": "1GB", "maintenance_work_mem": "2GB"}).start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            register_vector(conn)
            for pair in args.params:
                m, efc = (int(x) for x in pair.split(","))
                print(json.dumps({"n": args.n, **measure(conn, vectors, m, efc, args.ef_search, queries)}), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
