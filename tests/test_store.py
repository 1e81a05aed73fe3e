from __future__ import annotations

import numpy as np
import pytest

from docstack.console import DocstackError
from docstack.index.base import Chunk, Document
from docstack.index.sqlite.store import SqliteIndex

DIM = 8


def doc(source: str, n: int, seed: int, sha: str = "h") -> Document:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(f"{source} chunk {i}", i + 1, "S", 0, 10) for i in range(n)]
    return Document(f"/abs/{source}", source, sha + source, n, 100, 0.0, chunks, vectors)


def test_round_trip_survives_reopen(tmp_path):
    store = SqliteIndex(tmp_path, "m", DIM)
    a = doc("a.pdf", 5, 1)
    store.write([a, doc("b.md", 3, 2)])
    store.close()
    store = SqliteIndex(tmp_path, "m", DIM)
    assert len(store) == 8
    [(best, score)] = store.dense_search(a.vectors[2], 1)
    assert store.fetch([best])[best].text == "a.pdf chunk 2"
    assert store.fetch([best])[best].page == 3
    assert score == pytest.approx(1.0, abs=1e-5)
    assert store.stats().to_json() == {"documents": 2, "pages": 8, "chunks": 8, "vectors": 8}


def test_rewriting_a_document_replaces_its_chunks(tmp_path):
    store = SqliteIndex(tmp_path, "m", DIM)
    store.write([doc("a.pdf", 5, 1)])
    store.write([doc("a.pdf", 2, 9, sha="new")])
    assert len(store) == 2
    assert store.document("/abs/a.pdf").sha256 == "newa.pdf"
    assert store.remove("/abs/a.pdf") == 2
    assert len(store) == 0 and store.documents() == []


def test_missing_faiss_file_is_rebuilt_from_sqlite(tmp_path):
    store = SqliteIndex(tmp_path, "m", DIM)
    a = doc("a.pdf", 4, 1)
    store.write([a])
    store.close()
    for f in tmp_path.glob("index-*.faiss"):
        f.unlink()  # as after a crash between the SQLite commit and the FAISS rename
    store = SqliteIndex(tmp_path, "m", DIM)
    assert len(store) == 4
    [(best, _)] = store.dense_search(a.vectors[3], 1)
    assert store.fetch([best])[best].text == "a.pdf chunk 3"


def test_keyword_index_follows_writes(tmp_path):
    store = SqliteIndex(tmp_path, "m", DIM)
    store.write([doc("alpha.md", 2, 1)])
    assert store.keyword_search("alpha", 5)
    store.remove("/abs/alpha.md")
    assert store.keyword_search("alpha", 5) == []


def test_other_embedding_model_is_a_clear_error(tmp_path):
    SqliteIndex(tmp_path, "m", DIM).write([doc("a.md", 1, 1)])
    with pytest.raises(DocstackError, match="docstack reindex"):
        SqliteIndex(tmp_path, "other-model", 16)


def test_a_second_writer_sees_the_first_writers_chunks(tmp_path):
    first = SqliteIndex(tmp_path, "m", DIM)
    second = SqliteIndex(tmp_path, "m", DIM)
    first.write([doc("a.md", 3, 1)])
    second.write([doc("b.md", 2, 2)])
    assert len(SqliteIndex(tmp_path, "m", DIM)) == 5


def text_of(store: SqliteIndex, vector: np.ndarray) -> str:
    [(best, _)] = store.dense_search(vector, 1)
    return store.fetch([best])[best].text


def test_a_second_writer_catches_up_with_the_first_before_it_writes(tmp_path):
    first = SqliteIndex(tmp_path, "m", DIM)
    second = SqliteIndex(tmp_path, "m", DIM)  # loaded before the first writer wrote
    a, b = doc("a.md", 3, 1), doc("b.md", 2, 2)
    first.write([a])
    second.write([b])
    # The second writer's own view, not a fresh store's (which rebuilds from SQLite anyway).
    assert len(second) == 5 and second.stats().vectors == 5
    assert second.verify() == []
    assert text_of(second, a.vectors[1]) == "a.md chunk 1" and text_of(second, b.vectors[0]) == "b.md chunk 0"
    second.flush()  # its index is saved at the newest generation: a reopened store trusts it as it is
    assert [f.name for f in tmp_path.glob("index-*.faiss")] == [f"index-{second.generation}.faiss"]
    reopened = SqliteIndex(tmp_path, "m", DIM)
    assert reopened.verify() == [] and len(reopened) == 5
    assert text_of(reopened, a.vectors[2]) == "a.md chunk 2"
    # and the first writer, now behind in turn, catches up with the second
    c = doc("c.md", 1, 3)
    first.write([c])
    assert len(first) == 6 and first.verify() == [] and text_of(first, b.vectors[1]) == "b.md chunk 1"


def test_a_second_writer_drops_what_the_first_removed_meanwhile(tmp_path):
    SqliteIndex(tmp_path, "m", DIM).write([doc("a.md", 3, 1)])
    first = SqliteIndex(tmp_path, "m", DIM)
    second = SqliteIndex(tmp_path, "m", DIM)
    assert len(second) == 3
    assert first.remove("/abs/a.md") == 3
    b = doc("b.md", 2, 2)
    second.write([b])
    assert len(second) == 2 and second.verify() == []
    assert {second.fetch([i])[i].source for i, _ in second.dense_search(b.vectors[0], 5)} == {"b.md"}
    second.flush()
    reopened = SqliteIndex(tmp_path, "m", DIM)
    assert reopened.verify() == [] and len(reopened) == 2


def test_verify_names_each_inconsistency(tmp_path):
    """verify() is what the crash and concurrency tests rely on: it must see each kind of damage."""
    store = SqliteIndex(tmp_path, "m", DIM)
    store.write([doc("a.md", 3, 1), doc("b.md", 2, 2)])
    assert store.verify() == []
    ids = store.index.ids()
    store.index.remove(ids[:1])
    assert store.verify() == ["0 vectors without a chunk, 1 chunks without a vector"]
    store.index.add(np.array([999], dtype=np.int64), np.ones((1, DIM), dtype=np.float32))
    assert store.verify() == ["1 vectors without a chunk, 1 chunks without a vector"]
    store = SqliteIndex(tmp_path, "m", DIM)  # reopened: rebuilt from SQLite
    assert store.verify() == []
    store.db.execute("UPDATE documents SET chunks = 7 WHERE path = '/abs/b.md'")
    assert store.verify() == ["/abs/b.md: 7 chunks recorded, 2 stored"]
    store.db.execute("UPDATE documents SET chunks = 2 WHERE path = '/abs/b.md'")
    [(gone, text, section)] = store.db.execute("SELECT id, text, section FROM chunks LIMIT 1").fetchall()
    store.db.execute("INSERT INTO chunks_fts(chunks_fts, rowid, text, section) VALUES ('delete', ?, ?, ?)",
                     (gone, text, section))  # a keyword-index row gone missing
    assert store.verify() == ["keyword index has 4 rows for 5 chunks"]


def test_stale_faiss_cache_is_reconciled_with_sqlite(tmp_path):
    store = SqliteIndex(tmp_path, "m", DIM)
    a, b = doc("a.md", 3, 1), doc("b.md", 4, 2)
    store.write([a, b])
    store.flush()
    saved = list(tmp_path.glob("index-*.faiss"))
    store.remove("/abs/a.md")
    c = doc("c.md", 2, 3)
    store.write([c])
    assert list(tmp_path.glob("index-*.faiss")) == saved, "small writes should not rewrite the index"
    reopened = SqliteIndex(tmp_path, "m", DIM)
    assert len(reopened) == 6
    found = {reopened.fetch([i])[i].text for i, _ in reopened.dense_search(c.vectors[1], 6)}
    assert "c.md chunk 1" in found and not any(t.startswith("a.md") for t in found)


@pytest.mark.parametrize("change", ["removed", "added", "replaced", "unreadable", "truncated", "newest unreadable"])
def test_a_saved_index_older_than_sqlite_is_reconciled(tmp_path, change):
    """The FAISS file saved at generation G, SQLite at a later one: stale ids go, missing ones come,
    and an unreadable file is skipped (an older readable one is used, else SQLite rebuilds it)."""
    store = SqliteIndex(tmp_path, "m", DIM)
    a, b = doc("a.md", 3, 1), doc("b.md", 4, 2)
    store.write([a, b])
    store.flush()
    [saved] = tmp_path.glob("index-*.faiss")
    kept = saved.read_bytes()
    expected = {"a.md": a, "b.md": b}
    if change in ("removed", "unreadable", "truncated", "newest unreadable"):
        store.remove("/abs/a.md")
        del expected["a.md"]
    if change in ("added", "unreadable", "truncated", "newest unreadable"):
        expected["c.md"] = doc("c.md", 2, 3)
        store.write([expected["c.md"]])
    if change == "replaced":
        expected["a.md"] = doc("a.md", 2, 9, sha="new")
        store.write([expected["a.md"]])
    assert store.generation > int(saved.stem.split("-")[1]) and list(tmp_path.glob("index-*.faiss")) == [saved]
    if change == "newest unreadable":  # a newer save that is garbage, the older one still there
        store.write([doc("d.md", 1, 4)])
        store.remove("/abs/d.md")
        store.flush()
        [newest] = tmp_path.glob("index-*.faiss")
        newest.write_bytes(b"not a faiss index")
        saved.write_bytes(kept)
    store.close()
    if change == "unreadable":
        saved.write_bytes(b"not a faiss index")
    if change == "truncated":
        saved.write_bytes(kept[: len(kept) // 2])

    reopened = SqliteIndex(tmp_path, "m", DIM)
    assert reopened.verify() == []
    ids = np.sort(np.array([r[0] for r in reopened.db.execute("SELECT id FROM chunks")]))
    assert np.array_equal(np.sort(reopened.index.ids()), ids)
    assert len(reopened) == len(ids) == sum(len(d.chunks) for d in expected.values())
    for d in expected.values():
        for i, vector in enumerate(d.vectors):
            assert text_of(reopened, vector) == f"{d.source} chunk {i}"
    if change == "removed":
        assert not any(reopened.fetch([i])[i].source == "a.md" for i, _ in reopened.dense_search(a.vectors[0], 10))
    # the reconciled index is saved by the next flush, so the next open need not reconcile again
    reopened.flush()
    assert [f.name for f in tmp_path.glob("index-*.faiss")] == [f"index-{reopened.generation}.faiss"]
    assert SqliteIndex(tmp_path, "m", DIM).verify() == []


def test_large_collections_switch_to_ivf_with_good_recall(tmp_path, monkeypatch):
    from docstack.index.sqlite import vectors as vector_index

    monkeypatch.setattr(vector_index, "IVF_THRESHOLD", 400)
    store = SqliteIndex(tmp_path, "m", DIM)
    docs = [doc(f"d{i}.md", 50, i) for i in range(10)]
    store.write(docs)
    assert store.index.is_ivf and len(store) == 500
    assert list(tmp_path.glob("index-*.faiss")), "a rebuilt index is saved at once"

    def top_text(vector):
        [(best, _)] = store.dense_search(vector, 1)
        return store.fetch([best])[best].text

    assert sum(top_text(d.vectors[7]) == f"{d.source} chunk 7" for d in docs) >= 9
    store.flush()
    assert SqliteIndex(tmp_path, "m", DIM).index.is_ivf


def test_a_document_in_parts_is_recorded_only_when_complete(tmp_path):
    store = SqliteIndex(tmp_path, "m", DIM)
    whole = doc("big.txt", 6, 4)
    head = Document(whole.path, whole.source, whole.sha256, 1, 100, 0.0, whole.chunks[:4], whole.vectors[:4],
                    first=True, last=False)
    store.write([head])
    assert store.document(whole.path) is None, "an unfinished file must be ingested again"
    tail = Document(whole.path, whole.source, whole.sha256, 1, 100, 0.0, whole.chunks[4:], whole.vectors[4:],
                    first=False, last=True)
    store.write([tail])
    assert store.document(whole.path).sha256 == whole.sha256
    assert store.stats().chunks == 6 and len(store) == 6
    store.write([whole])  # a re-ingest replaces all parts
    assert len(store) == 6


def test_a_reader_sees_another_writers_changes_after_refresh(tmp_path):
    reader = SqliteIndex(tmp_path, "m", DIM)
    writer = SqliteIndex(tmp_path, "m", DIM)
    added = doc("new.md", 2, 5)
    writer.write([added])
    assert len(reader) == 0
    reader.refresh()
    [(best, _)] = reader.dense_search(added.vectors[0], 1)
    assert reader.fetch([best])[best].source == "new.md" and len(reader) == 2


def test_keyword_search_leaves_out_the_commonest_words_beyond_its_budget(tmp_path, monkeypatch):
    import docstack.index.sqlite.store as store_module

    store = SqliteIndex(tmp_path / "c", "test-model", 8)
    texts = [f"pump manual section {i}" for i in range(20)] + ["pump valve torque figures"]
    vectors = np.random.default_rng(0).standard_normal((len(texts), 8)).astype(np.float32)
    store.write([Document("/d.txt", "d.txt", "h", 1, 100, 0.0,
                          [Chunk(t, 1, None, 0, len(t)) for t in texts], vectors)])
    everywhere = store.keyword_search("pump torque", 30)
    assert len(everywhere) == 21  # within the budget: "pump" scores every chunk
    monkeypatch.setattr(store_module, "KEYWORD_POSTINGS_BUDGET", 10)
    only_rare = store.keyword_search("pump torque", 30)
    assert [store.fetch([i])[i].text for i, _ in only_rare] == ["pump valve torque figures"]
    assert len(store.keyword_search("pump manual", 30)) == 20  # all common: the rarer one is kept


def test_threads_sharing_a_store_each_get_their_own_results(tmp_path):
    """The web app and the API serve many users from one process, and so one store: 50 searches
    at once used to fail with 'bad parameter or other API misuse', or come back with another
    thread's rows (sqlite3 shared one prepared statement between threads running the same SQL)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    store = SqliteIndex(tmp_path, "m", DIM)
    sources = [f"{word}.md" for word in ("pump", "valve", "boiler", "turbine", "sensor", "filter", "fan", "gear")]
    store.write([doc(source, 4, seed) for seed, source in enumerate(sources)])
    store.put_state("access", "grant", {"owner": "local"})

    def look(source: str) -> tuple:
        found = store.keyword_search(source.removesuffix(".md"), 4)
        return (sorted(chunk.source for chunk in store.fetch([i for i, _ in found]).values()),
                store.get_state("access", "grant"))

    expected = {source: look(source) for source in sources}
    assert all(found == ([source] * 4, {"owner": "local"}) for source, found in expected.items())
    for _ in range(20):
        barrier = Barrier(50)

        def search(n: int) -> tuple:
            barrier.wait()
            return look(sources[n % len(sources)])

        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(search, range(50)))
        assert results == [expected[sources[n % len(sources)]] for n in range(50)]
