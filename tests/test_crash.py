"""kill -9 a real `docstack ingest` at random moments: the collection must stay consistent."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
from docstack.index.sqlite.store import SAVE_AFTER_CHANGES, SqliteIndex
from docstack.index.sqlite.vectors import VectorIndex

from docstack import DocStack
from tests.pdfs import write_pdf


def test_kill_9_during_ingest_leaves_a_consistent_collection(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(30):
        (corpus / f"note-{i:02}.md").write_text(
            f"# Note {i}\n\n" + "\n\n".join(f"Paragraph {j} of note {i} about pump {i * 7 + j}." * 6
                                            for j in range(12)))
    for i in range(3):
        write_pdf(corpus / f"manual-{i}.pdf", [f"Manual {i} page {p} about valves." * 20 for p in range(15)])
    home = tmp_path / "home"
    # Small transactions, so that kills land between and inside many of them.
    env = {**os.environ, "DOCSTACK_HOME": str(home), "DOCSTACK_WRITE_BATCH": "8"}
    command = [sys.executable, "-m", "docstack.cli", "ingest", str(corpus), "--json"]
    collection = home / "collections" / "default"
    rng = random.Random(1234)
    kills = 0
    progress: list[int] = []
    for attempt in range(4):
        kills += kill_while_writing(command, env, collection, rng.uniform(0.0, 1.5))
        store = SqliteIndex(collection, embedder.name, embedder.dimension)
        assert store.verify() == [], f"after kill {attempt}"
        progress.append(store.stats().chunks)
        for hit_id, _ in store.dense_search(embedder.embed(["pump"])[0], 5):
            assert hit_id in store.fetch([hit_id])
        store.close()
    assert kills >= 2, "the ingest finished before it could be killed; make the corpus larger"
    assert progress[-1] > 0, f"no kill landed after a commit: {progress}"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    store = SqliteIndex(collection, embedder.name, embedder.dimension)
    assert store.verify() == []
    assert store.stats().documents == 33


def test_kill_9_after_the_faiss_index_was_saved_leaves_a_consistent_collection(tmp_path, embedder, docstack):
    """The kills above land before any FAISS file exists (an ingest saves it at its end, or after
    SAVE_AFTER_CHANGES changes), so reopening only rebuilds. Here a complete ingest saves the index
    first; then every note is rewritten (its old chunks go, new ones come) and new notes added, and
    the re-ingest is killed while it writes: the saved file is now older than SQLite, with stale
    ids and missing ones, and reopening must reconcile it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    notes = 16
    for i in range(notes):
        (corpus / f"note-{i:02}.md").write_text(note(i, "pump", "bearing"))
    home = docstack.settings.home
    collection = home / "collections" / "default"
    assert docstack.ingest([corpus]).files == notes  # the same ingest as the CLI's, with the loaded model
    docstack.library.index().close()
    [saved] = collection.glob("index-*.faiss")
    assert saved.name == f"index-{generation(collection)}.faiss", "a finished ingest saves the FAISS index"
    before = stored_ids(collection)
    assert len(before) < SAVE_AFTER_CHANGES  # so the killed re-ingest will not save it again on its own

    for i in range(notes):
        (corpus / f"note-{i:02}.md").write_text(note(i, "impeller", "gasket"))
    for i in range(notes, notes + 6):
        (corpus / f"note-{i:02}.md").write_text(note(i, "impeller", "gasket"))
    env = {**os.environ, "DOCSTACK_HOME": str(home), "DOCSTACK_WRITE_BATCH": "8"}
    command = [sys.executable, "-m", "docstack.cli", "ingest", str(corpus), "--json"]
    rng = random.Random(99)
    reconciled = []
    for attempt in range(2):
        if not kill_while_writing(command, env, collection, rng.uniform(0.0, 0.8)):
            break  # it finished: its own save made the index current
        assert list(collection.glob("index-*.faiss")) == [saved], "the killed ingest saved no newer index"
        cached, cached_generation = VectorIndex.load(collection, embedder.dimension)
        stored = stored_ids(collection)
        assert cached_generation < generation(collection)
        stale, missing = np.setdiff1d(cached.ids(), stored), np.setdiff1d(stored, cached.ids())
        reconciled.append((len(stale), len(missing)))

        store = SqliteIndex(collection, embedder.name, embedder.dimension)
        assert store.verify() == [], f"after kill {attempt}"
        assert np.array_equal(np.sort(store.index.ids()), stored)
        for word in ("pump bearing", "impeller gasket"):
            hits = store.dense_search(embedder.embed([word])[0], 10)
            assert hits and all(i in store.fetch([i]) for i, _ in hits)
        if len(missing):  # a new chunk is found by its own vector, not only through SQLite
            new_id = int(missing[0])
            [(best, _)] = store.dense_search(store.fetch([new_id])[new_id].vector, 1)
            assert best == new_id
        assert not set(stale.tolist()) & {i for i, _ in store.dense_search(embedder.embed(["pump bearing"])[0], 50)}
        store.close()
    assert any(s and m for s, m in reconciled), f"no kill left a stale saved index to reconcile: {reconciled}"

    # The rest goes in (in this process: the same ingest, without loading the model again).
    fresh = DocStack(docstack.settings, embedder=embedder)
    assert fresh.ingest([corpus]).errors == []
    fresh.library.index().close()
    store = SqliteIndex(collection, embedder.name, embedder.dimension)
    assert store.verify() == [] and store.stats().documents == notes + 6
    assert not set(before.tolist()) & set(stored_ids(collection).tolist()), "every old chunk was replaced"
    [resaved] = collection.glob("index-*.faiss")
    assert resaved.name == f"index-{generation(collection)}.faiss"
    cached, _ = VectorIndex.load(collection, embedder.dimension)
    assert np.array_equal(np.sort(cached.ids()), stored_ids(collection))
    store.close()


def note(i: int, thing: str, part: str) -> str:
    return f"# Note {i}\n\n" + "\n\n".join(f"Paragraph {j} of note {i} about the {thing} {i * 7 + j} and its {part}. "
                                            * 6 for j in range(10))


def kill_while_writing(command: list[str], env: dict, collection, delay: float) -> bool:
    """Run an ingest, wait until it commits a write, and kill -9 it `delay` seconds into the
    writing; False if it finished first."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    start = generation(collection)
    deadline = time.monotonic() + 120
    while generation(collection) == start and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill_leftovers(proc)
    return killed


def kill_leftovers(proc: subprocess.Popen) -> None:
    """Workers exit with the ingest (tests/test_workers.py checks it); should that break, end them here
    so that no test run leaves processes behind."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stored_ids(collection) -> np.ndarray:
    with sqlite3.connect(f"file:{collection / SqliteIndex.DB}?mode=ro", uri=True, timeout=5) as db:
        return np.sort(np.fromiter((r[0] for r in db.execute("SELECT id FROM chunks")), dtype=np.int64))


def generation(collection) -> int:
    if not SqliteIndex.exists(collection):
        return 0
    with sqlite3.connect(f"file:{collection / SqliteIndex.DB}?mode=ro", uri=True, timeout=5) as db:
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        except sqlite3.OperationalError:  # the ingest has created the file but not yet its schema
            return 0
    return int(row[0]) if row else 0
