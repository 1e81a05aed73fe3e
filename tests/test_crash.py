"""kill -9 a real `docstack ingest` at random moments: the collection must stay consistent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from docstack.index.sqlite.store import SqliteIndex
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
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Wait until it commits a write, then kill it at a random moment of the writing.
        start = generation(collection)
        deadline = time.monotonic() + 120
        while generation(collection) == start and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
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


def generation(collection) -> int:
    import sqlite3

    if not SqliteIndex.exists(collection):
        return 0
    with sqlite3.connect(f"file:{collection / SqliteIndex.DB}?mode=ro", uri=True, timeout=5) as db:
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        except sqlite3.OperationalError:  # the ingest has created the file but not yet its schema
            return 0
    return int(row[0]) if row else 0
