"""What only the PostgreSQL backend has to show: its schema versions, its one-line errors, a writer
killed mid-document, and several processes writing and reading one collection. The behaviour it
shares with SQLite is in test_index_contract.py. Runs against a real PostgreSQL (tests/pg_server.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from docstack.console import DocstackError
from docstack.index.base import Chunk, Document, Filters
from docstack.index.postgres import schema
from docstack.index.postgres.backend import PostgresBackend
from docstack.index.postgres.config import PostgresIndexConfig
from docstack.index.registry import open_backend
from docstack.settings import Settings
from tests.conftest import ROOT, free_port

DIM = 16
MODEL = "pg-test-model"

# A writer in its own process: documents of many chunks, each in one write, marking in a file when
# each write begins and ends, forever or `count` times. argv: url, collection, tag, marks, count.
WRITER = """
import sys, numpy as np
from docstack.index.base import Chunk, Document
from docstack.index.postgres.backend import PostgresBackend
from docstack.index.postgres.config import PostgresIndexConfig
url, name, tag, marks, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
index = PostgresBackend(PostgresIndexConfig.from_url(url)).open(name, "pg-test-model", 16)
rng = np.random.default_rng(abs(hash(tag)) % 1000)
with open(marks, "a", buffering=1) as out:
    i = 0
    while count < 0 or i < count:
        size = 400 if count < 0 else 5
        for path in (f"/docs/{tag}-{i}.md", "/docs/shared.md"):
            texts = [f"{tag} passage {j} about pumps" for j in range(size + (i % 3))]
            vectors = rng.normal(size=(len(texts), 16)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            out.write(f"begin {path}\\n")
            index.write([Document(path, path[1:], f"{tag}-{i}", 1, 10, 0.0,
                                  [Chunk(t, 1, None, 0, len(t)) for t in texts], vectors)])
            out.write(f"done {path}\\n")
        i += 1
"""


@pytest.fixture
def backend(postgres_url):
    backend = PostgresBackend(PostgresIndexConfig.from_url(postgres_url))
    yield backend
    backend.close()


def writer(url: str, tag: str, marks: Path, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, url, "shared", tag, str(marks), str(count)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def consistent(index) -> None:
    """Every recorded document is whole (verify() reads in one snapshot), and what one read of a
    document's chunks returns is one write's: one writer, passages 0..n-1 (another write may land
    between reading the records and reading a document, so the two are not compared)."""
    assert index.verify() == []
    for record in index.documents():
        texts = [c.text.split() for c in index.chunks(record.path)]
        assert len({t[0] for t in texts}) <= 1, f"{record.path} mixes two writes"
        assert [int(t[2]) for t in texts] == list(range(len(texts))), record.path


def test_the_schema_version_is_recorded_once_and_a_newer_one_is_refused(backend, postgres_url):
    assert backend.names() == [] and backend.schema_version() == schema.latest()
    again = PostgresBackend(PostgresIndexConfig.from_url(postgres_url))
    assert again.names() == []  # opening again applies nothing twice
    with psycopg.connect(postgres_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM docstack_schema_version ORDER BY version")]
        assert versions == list(range(1, schema.latest() + 1))
        conn.execute("INSERT INTO docstack_schema_version (version) VALUES (%s)", (schema.latest() + 1,))
    again.close()
    newer = PostgresBackend(PostgresIndexConfig.from_url(postgres_url))
    with pytest.raises(DocstackError, match="upgrade docstack"):
        newer.names()


def test_errors_are_one_line_naming_the_fix(postgres_url, postgres_server):
    nowhere = open_backend(Settings(index_url=f"postgresql://docstack:secret@127.0.0.1:{free_port()}/db"))
    with pytest.raises(DocstackError) as error:
        nowhere.names()
    message = str(error.value)
    assert "cannot connect" in message and "DOCSTACK_INDEX_URL" in message and "\n" not in message
    assert "secret" not in message  # the password is not printed
    with pytest.raises(DocstackError, match="DOCSTACK_INDEX_TEXT_LANGUAGE"):
        open_backend(Settings(index_url=postgres_url, index_text_language="english; drop table x"))
    # A user who may not enable pgvector in a database that lacks it.
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute("CREATE ROLE reader LOGIN")
        conn.execute("CREATE DATABASE plain OWNER reader")
    try:
        plain = open_backend(Settings(index_url=postgres_server.url.replace("postgres@", "reader@").rsplit("/", 1)[0]
                                      + "/plain"))
        with pytest.raises(DocstackError, match="CREATE EXTENSION vector") as error:
            plain.names()
        assert "\n" not in str(error.value)
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute("DROP DATABASE plain WITH (FORCE)")
            conn.execute("DROP ROLE reader")


def test_a_writer_killed_mid_document_leaves_the_last_committed_state(backend, postgres_url, tmp_path):
    index = backend.open("shared", MODEL, DIM)
    rng = random.Random(17)
    inside = 0
    for attempt in range(3):
        marks = tmp_path / f"marks-{attempt}"
        proc = writer(postgres_url, f"w{attempt}", marks, count=-1)
        deadline = time.monotonic() + 60
        # Wait until one write committed and the next has begun, then a moment more.
        while time.monotonic() < deadline and proc.poll() is None:
            lines = marks.read_text().splitlines() if marks.exists() else []
            if any(line.startswith("done") for line in lines) and lines[-1].startswith("begin"):
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        assert proc.poll() is None, proc.stderr.read()
        lines = marks.read_text().splitlines()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        inside += lines[-1].startswith("begin")
        index.refresh()
        consistent(index)
        own = {"/docs/shared.md"}
        done = {line.split()[1] for line in lines if line.startswith("done")} - own
        recorded = {d.path for d in index.documents() if d.sha256.startswith(f"w{attempt}-")} - own
        assert done <= recorded <= done | {lines[-1].split()[1]}  # the write in flight may have just committed
    assert inside >= 2, "no kill landed while a write was open"


def test_two_processes_writing_while_a_third_searches_see_whole_documents(backend, postgres_url, tmp_path):
    index = backend.open("shared", MODEL, DIM)
    procs = [writer(postgres_url, tag, tmp_path / f"{tag}.marks", count=6) for tag in ("left", "right")]
    probe = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    searches = 0
    while any(p.poll() is None for p in procs) or searches < 3:
        index.refresh()
        consistent(index)
        for hits in (index.dense_search(probe, 10), index.keyword_search("pumps passage", 10)):
            scores = [s for _, s in hits]
            assert len(hits) <= 10 and scores == sorted(scores, reverse=True)
            # A hit's chunk may be replaced before it is fetched (the retriever leaves it out), but
            # what is fetched is whole: its text and vector from the same write.
            assert all(c.vector.shape == (DIM,) for c in index.fetch([i for i, _ in hits]).values())
        searches += 1
    for proc in procs:
        assert proc.wait() == 0, proc.stderr.read()
    index.refresh()
    consistent(index)
    paths = {d.path for d in index.documents()}
    assert paths == {f"/docs/{t}-{i}.md" for t in ("left", "right") for i in range(6)} | {"/docs/shared.md"}
    assert index.generation == 2 * 6 * 2  # every write committed once
    assert index.stats().chunks == sum(d.chunks for d in index.documents())
    assert searches >= 3



def test_a_selective_filter_is_searched_exactly_where_the_hnsw_scan_would_stop_short(postgres_url):
    """With the HNSW index forced and its scan cut to 10 tuples, a filter passing 30 chunks of 600
    still returns all of them, best first: it is searched exactly, not through the index."""
    crippled = postgres_url + "?options=" + "-c%20enable_seqscan%3Doff%20-c%20hnsw.max_scan_tuples%3D10"
    backend = PostgresBackend(PostgresIndexConfig.from_url(crippled))
    try:
        index = backend.open("filtered", MODEL, DIM)
        rng = np.random.default_rng(5)
        for name, count in (("many.md", 570), ("few.md", 30)):
            vectors = rng.normal(size=(count, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            index.write([Document(f"/docs/{name}", f"docs/{name}", name, 1, 10, 0.0,
                                  [Chunk(f"{name} {i}", 1, None, 0, 5) for i in range(count)], vectors)])
        probe = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
        hits = index.dense_search(probe, 40, Filters(source="few.md"))
        assert len(hits) == 30
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        few = index.chunks("/docs/few.md")
        assert {i for i, _ in hits} == {c.chunk_id for c in few}
        best = max(few, key=lambda c: float(c.vector @ probe))
        assert hits[0][0] == best.chunk_id
    finally:
        backend.close()


def hnsw_definition(url: str, name: str) -> str | None:
    with psycopg.connect(url) as conn:
        (table_id,) = conn.execute("SELECT id FROM docstack_collections WHERE name = %s", (name,)).fetchone()
        return schema.vector_index_definition(conn, table_id)


# A bulk load in its own process, killed between its writes. argv: url, marks.
BULK = """
import sys, time, numpy as np
from docstack.index.base import Chunk, Document
from docstack.index.postgres.backend import PostgresBackend
from docstack.index.postgres.config import PostgresIndexConfig
index = PostgresBackend(PostgresIndexConfig.from_url(sys.argv[1])).open("bulk", "pg-test-model", 16)
with index.bulk():
    vectors = np.eye(16, dtype=np.float32)
    index.write([Document("/docs/a.md", "docs/a.md", "a", 1, 10, 0.0,
                          [Chunk(f"passage {i}", 1, None, 0, 9) for i in range(16)], vectors)])
    open(sys.argv[2], "w").write("written")
    time.sleep(600)
"""


def test_a_bulk_load_builds_the_hnsw_index_once_at_its_end_as_the_collection_had_it(postgres_url):
    backend = PostgresBackend(PostgresIndexConfig.from_url(postgres_url, hnsw_m=12, hnsw_ef_construction=40))
    try:
        index = backend.open("bulk", MODEL, DIM)
        before = hnsw_definition(postgres_url, "bulk")
        assert "m='12'" in before and "ef_construction='40'" in before
        with index.bulk():
            assert hnsw_definition(postgres_url, "bulk") is None
            # Another process opening the collection meanwhile leaves the index to the bulk load.
            PostgresBackend(PostgresIndexConfig.from_url(postgres_url)).open("bulk", MODEL, DIM)
            assert hnsw_definition(postgres_url, "bulk") is None
        assert hnsw_definition(postgres_url, "bulk") == before
    finally:
        backend.close()


def test_a_bulk_load_killed_midway_gets_its_hnsw_index_from_the_next_open(backend, postgres_url, tmp_path):
    marks = tmp_path / "marks"
    proc = subprocess.Popen([sys.executable, "-c", BULK, postgres_url, str(marks)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not marks.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marks.exists(), proc.stderr.read() if proc.poll() is not None else "the bulk load did not write"
    assert hnsw_definition(postgres_url, "bulk") is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    index = backend.open("bulk", MODEL, DIM)
    assert "hnsw" in hnsw_definition(postgres_url, "bulk")
    assert index.stats().chunks == 16 and index.verify() == []
    probe = np.eye(DIM, dtype=np.float32)[3]
    assert index.fetch([index.dense_search(probe, 1)[0][0]]).popitem()[1].text == "passage 3"
