"""The index contract: what every backend behind `ChunkIndex` / `IndexBackend` must do. Each
test runs once per backend in BACKENDS; a new backend (PostgreSQL + pgvector) joins the list and
passes the same tests. Backend-specific behaviour (the FAISS cache, IVF) is in test_store.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
import pytest

from docstack.console import DocstackError
from docstack.index.base import Chunk, ChunkIndex, Document, Filters, IndexBackend
from docstack.index.sqlite.backend import SqliteBackend
from docstack.index.sqlite.config import SqliteIndexConfig

DIM = 8
MODEL = "contract-model"


def sqlite_backend(request) -> IndexBackend:
    return SqliteBackend(SqliteIndexConfig(root=request.getfixturevalue("tmp_path") / "collections"))


def postgres_backend(request) -> IndexBackend:
    """A fresh database on the session's PostgreSQL (tests/pg_server.py); skipped if none can start."""
    from docstack.index.postgres.backend import PostgresBackend
    from docstack.index.postgres.config import PostgresIndexConfig

    return PostgresBackend(PostgresIndexConfig.from_url(request.getfixturevalue("postgres_url")))


BACKENDS: dict[str, Callable] = {"sqlite": sqlite_backend, "postgres": postgres_backend}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request) -> IndexBackend:
    backend = BACKENDS[request.param](request)
    yield backend
    getattr(backend, "close", lambda: None)()


@pytest.fixture
def index(backend) -> ChunkIndex:
    return backend.open("contract", MODEL, DIM)


def unit(seed: int, n: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def doc(name: str, texts: list[str], seed: int = 0, sha: str = "h", first: bool = True, last: bool = True,
        pages: list[int | None] | None = None, safety: list[str | None] | None = None) -> Document:
    pages = pages or [i + 1 for i in range(len(texts))]
    chunks = [Chunk(t, p, "Section", 0, len(t)) for t, p in zip(texts, pages)]
    return Document(f"/docs/{name}", f"docs/{name}", f"{sha}-{name}", max(p or 1 for p in pages), 100, 1.5,
                    chunks, unit(seed, len(texts)), first, last, safety)


def test_written_chunks_come_back_whole_with_vectors_and_verdicts(index):
    manual = doc("manual.pdf", ["the pump is serviced every 42 days", "valves are checked weekly"], seed=1,
                 safety=[json.dumps({"version": "v1"}), None])
    index.write([manual])
    ids = [i for i, _ in index.dense_search(manual.vectors[0], 2)]
    stored = index.fetch(ids)
    best = stored[ids[0]]
    assert (best.text, best.page, best.source, best.path) == (
        "the pump is serviced every 42 days", 1, "docs/manual.pdf", "/docs/manual.pdf")
    assert np.allclose(best.vector, manual.vectors[0], atol=1e-6)
    assert json.loads(best.safety) == {"version": "v1"} and stored[ids[1]].safety is None
    assert index.fetch([10**9]) == {}


def test_a_documents_chunks_come_back_in_order(index):
    parts = doc("big.txt", ["first part", "second part"], seed=20, last=False, safety=['{"v": 1}', None])
    index.write([parts, doc("other.md", ["other"], seed=21)])
    index.write([doc("big.txt", ["third part"], seed=22, first=False)])
    chunks = index.chunks("/docs/big.txt")
    assert [c.text for c in chunks] == ["first part", "second part", "third part"]
    assert [c.safety for c in chunks] == ['{"v": 1}', None, None]
    assert np.allclose(np.vstack([c.vector for c in chunks]), np.vstack([parts.vectors, unit(22, 1)]), atol=1e-6)
    assert index.chunks("/docs/none.md") == []


def test_dense_search_ranks_by_cosine_and_respects_filters(index):
    index.write([doc("a.pdf", ["alpha one", "alpha two", "alpha three"], seed=2),
                 doc("b.md", ["beta one"], seed=3, pages=[None])])
    target = index.fetch([i for i, _ in index.dense_search(unit(2, 3)[1], 1)])
    assert [c.text for c in target.values()] == ["alpha two"]
    scores = [s for _, s in index.dense_search(unit(2, 3)[1], 4)]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(1.0, abs=1e-5)
    only_b = index.dense_search(unit(2, 3)[1], 4, Filters(source="b.md"))
    assert [index.fetch([i])[i].source for i, _ in only_b] == ["docs/b.md"]
    glob = index.dense_search(unit(2, 3)[1], 4, Filters(source="*/a.*"))
    assert {index.fetch([i])[i].source for i, _ in glob} == {"docs/a.pdf"}
    pages = index.dense_search(unit(2, 3)[1], 4, Filters(pages=(2, 3)))
    assert sorted(index.fetch([i])[i].page for i, _ in pages) == [2, 3]
    assert index.dense_search(unit(2, 3)[1], 4, Filters(source="nowhere")) == []


def test_keyword_search_scores_bm25_and_respects_filters(index):
    index.write([doc("a.md", ["torque figures for the pump", "pump manual cover", "nothing relevant"], seed=4),
                 doc("b.md", ["torque wrench settings"], seed=5)])
    found = index.keyword_search("pump torque", 5)
    texts = [index.fetch([i])[i].text for i, _ in found]
    assert texts[0] == "torque figures for the pump" and "nothing relevant" not in texts
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    filtered = index.keyword_search("torque", 5, Filters(source="b.md"))
    assert [index.fetch([i])[i].text for i, _ in filtered] == ["torque wrench settings"]


def test_a_write_is_one_transaction(index):
    index.write([doc("kept.md", ["kept chunk"], seed=6)])
    broken = Document("/docs/broken.md", "docs/broken.md", "x", 1, 10, 0.0, [Chunk("a", 1, None, 0, 1)],
                      unit(7, 2))  # two vectors for one chunk
    with pytest.raises(ValueError):
        index.write([doc("other.md", ["other chunk"], seed=8), broken])
    assert [d.source for d in index.documents()] == ["docs/kept.md"]
    assert index.stats().chunks == 1 and index.verify() == []


def test_rewriting_replaces_and_removing_forgets(index):
    index.write([doc("a.md", ["old one", "old two", "old three"], seed=9)])
    before = index.generation
    index.write([doc("a.md", ["new one"], seed=10, sha="new")])
    assert index.generation > before
    assert index.document("/docs/a.md").sha256 == "new-a.md" and index.stats().chunks == 1
    assert [index.fetch([i])[i].text for i, _ in index.keyword_search("one", 5)] == ["new one"]
    assert index.remove("/docs/a.md") == 1 and index.documents() == [] and index.document("/docs/a.md") is None
    assert index.dense_search(unit(10, 1)[0], 5) == [] and index.verify() == []


def test_a_document_in_parts_is_recorded_only_when_complete(index):
    head = doc("big.txt", ["part one", "part two"], seed=11, last=False)
    index.write([head])
    assert index.document("/docs/big.txt") is None, "an unfinished file must be ingested again"
    index.write([doc("big.txt", ["part three"], seed=12, first=False)])
    record = index.document("/docs/big.txt")
    assert record is not None and record.chunks == 3 and (record.bytes, record.mtime) == (100, 1.5)
    assert index.path_with_hash("h-big.txt") == "/docs/big.txt" and index.path_with_hash("nope") is None
    index.write([doc("big.txt", ["whole again"], seed=13)])
    assert index.stats().to_json() == {"documents": 1, "pages": 1, "chunks": 1, "vectors": 1}


def test_another_handle_sees_committed_changes_after_refresh(backend, index):
    other = backend.open("contract", MODEL, DIM)
    added = doc("new.md", ["fresh text"], seed=14)
    other.write([added])
    index.refresh()
    [(best, _)] = index.dense_search(added.vectors[0], 1)
    assert index.fetch([best])[best].source == "docs/new.md" and index.stats().chunks == 1
    index.write([doc("second.md", ["second text"], seed=15)])  # the first handle writes on top
    other.refresh()
    assert other.stats().chunks == 2 and other.verify() == [] and index.verify() == []


def test_opening_with_another_embedding_model_names_reindex(backend, index):
    index.write([doc("a.md", ["text"], seed=16)])
    with pytest.raises(DocstackError, match="docstack reindex"):
        backend.open("contract", "another-model", DIM * 2)


def test_collections_are_listed_deleted_and_replaced(backend):
    assert backend.names() == [] and not backend.exists("one")
    backend.open("one", MODEL, DIM).write([doc("a.md", ["from one"], seed=17)])
    backend.open(".staging", MODEL, DIM).write([doc("b.md", ["from staging"], seed=18)])
    assert backend.names() == ["one"] and backend.exists(".staging")  # internal names are not listed
    assert backend.document_paths("one") == ["/docs/a.md"]
    backend.replace("one", ".staging")
    assert backend.document_paths("one") == ["/docs/b.md"] and not backend.exists(".staging")
    backend.delete("one")
    assert backend.names() == [] and not backend.exists("one")


def test_size_and_flush(index):
    index.write([doc("a.md", ["some text"] * 3, seed=19)])
    index.flush()
    assert index.size_bytes() > 0


def test_containing_finds_every_chunk_with_the_phrase_not_the_top_k(index):
    texts = [f"page {i} mentions the relief valve" if i % 3 == 0 else f"page {i} is about the pump" for i in range(60)]
    index.write([doc("manual.pdf", texts, seed=30), doc("other.md", ["a relief valve too"], seed=31)])
    found = index.fetch(index.containing("relief valve"))
    assert sorted(c.page for c in found.values() if c.path == "/docs/manual.pdf") == list(range(1, 61, 3))
    assert [c.path for c in found.values()].count("/docs/other.md") == 1
    only_manual = index.containing("Relief-Valve", Filters(source="manual"))
    assert len(only_manual) == 20 and only_manual == sorted(only_manual)  # document order
    assert index.containing("valve relief") == [] and index.containing("...") == []
    # any order, any ending: a printed index's "valves, relief" for a page on the relief valve
    assert sorted(index.containing("valv relie", any_order=True)) == sorted(index.containing("relief valve"))


def test_a_documents_structure_is_kept_with_it_and_goes_with_it(index):
    outline = {"source": "bookmarks", "pages": 2, "sections": [{"title": "Intro", "level": 1, "page": 1}]}
    index.write([dataclasses.replace(doc("manual.pdf", ["one", "two"], seed=32), structure=outline)])
    assert index.structure("/docs/manual.pdf") == outline and index.structure("/docs/none.pdf") is None
    index.remove("/docs/manual.pdf")
    assert index.structure("/docs/manual.pdf") is None


def test_state_values_round_trip_by_kind_and_key(index):
    index.put_state("job", "a", {"done": 1, "total": 4})
    index.put_state("job", "b", {"done": 0})
    index.put_state("job", "a", {"done": 2, "total": 4})
    index.put_state("cache", "a", {"text": "x"})
    assert index.get_state("job", "a") == {"done": 2, "total": 4} and index.get_state("job", "z") is None
    assert index.state_kinds() == ["cache", "job"]
    assert index.states("job") == {"b": {"done": 0}, "a": {"done": 2, "total": 4}}  # oldest update first
    index.delete_state("job", "b")
    assert list(index.states("job")) == ["a"]
    index.delete_state("job")
    assert index.states("job") == {} and index.states("cache") == {"a": {"text": "x"}}


def test_writes_in_a_bulk_block_are_found_during_and_after_it(index):
    index.write([doc("before.md", ["an older passage on gaskets"], seed=3)])
    with index.bulk():
        loaded = [doc(f"bulk-{i}.md", [f"bulk passage {i} on pumps", f"bulk passage {i} on valves"], seed=10 + i)
                  for i in range(5)]
        for document in loaded:
            index.write([document])
        best = index.dense_search(loaded[2].vectors[1], 1)[0][0]
        assert best in {c.chunk_id for c in index.chunks("/docs/bulk-2.md")}
    for document in loaded:
        best = index.dense_search(document.vectors[0], 1)[0][0]
        assert index.fetch([best])[best].path == document.path
    assert index.stats().chunks == 11 and index.verify() == []
    assert index.keyword_search("gaskets", 3)
