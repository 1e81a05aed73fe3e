"""`docstack ingest --ray`: files parsed and embedded as Ray tasks on a real local Ray head give the
same collection, errors, re-run and --sync behaviour as the local worker processes, and a driver
killed with -9 leaves a consistent collection that the next run completes."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from docstack import DocStack, Settings
from docstack.index.sqlite.store import SqliteIndex
from docstack.ingest.pipeline import Finished, Pending, Recipe, prepare_whole
from docstack.ingest.readers import Part
from tests.conftest import SHARED_MODELS, run_cli
from tests.test_crash import kill_while_writing
from tests.pdfs import write_manual_and_notes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = write_manual_and_notes(tmp_path_factory.mktemp("corpus"))
    (root / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    return root


def stored(home: Path) -> dict[str, list[tuple]]:
    """Every document's chunks as (text, page, section, vector), by path."""
    index = DocStack(Settings(home=home, models_dir=SHARED_MODELS)).library.index()
    return {d.path: [(c.text, c.page, c.section, c.vector) for c in index.chunks(d.path)] for d in index.documents()}


def test_ray_ingest_matches_the_local_one_and_a_rerun_is_unchanged(tmp_path, corpus, ray_head):
    folder = tmp_path / "docs"
    shutil.copytree(corpus, folder)
    local = run_cli(["ingest", str(folder), "--json"], tmp_path / "local")
    on_ray = run_cli(["ingest", str(folder), "--json", "--ray", ray_head.address], tmp_path / "ray")
    assert on_ray.returncode == local.returncode == 1, on_ray.stderr
    assert on_ray.stderr == ""
    ray_report, local_report = json.loads(on_ray.stdout), json.loads(local.stdout)
    for key in ("files", "pages", "chunks", "errors", "warnings", "unchanged"):
        assert ray_report[key] == local_report[key], key
    assert [e["path"] for e in ray_report["errors"]] == [str(folder / "broken.pdf")]

    ray_chunks, local_chunks = stored(tmp_path / "ray"), stored(tmp_path / "local")
    assert ray_chunks.keys() == local_chunks.keys() and len(ray_chunks) == 2
    for path, chunks in ray_chunks.items():
        assert [c[:3] for c in chunks] == [c[:3] for c in local_chunks[path]]
        # One thread per Ray task against several here: sums in another order, same vectors.
        assert np.allclose([c[3] for c in chunks], [c[3] for c in local_chunks[path]], atol=1e-4)

    # Again, from the setting, with one file gone and --sync: the other is unchanged, the gone one forgotten.
    (folder / "notes.md").unlink()
    again = run_cli(["ingest", str(folder), "--sync", "--json"], tmp_path / "ray", DOCSTACK_RAY_ADDRESS=ray_head.address)
    again_report = json.loads(again.stdout)
    assert (again_report["files"], again_report["chunks"], again_report["unchanged"]) == (0, 0, 1)
    assert again_report["removed"] == 1 and list(stored(tmp_path / "ray")) == [str(folder / "manual.pdf")]


def test_a_bad_ray_address_is_one_line_naming_the_setting(tmp_path, corpus):
    result = run_cli(["ingest", str(corpus / "notes.md"), "--ray", "127.0.0.1:1"], tmp_path / "home")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DOCSTACK_RAY_ADDRESS" in lines[0] and "127.0.0.1:1" in lines[0], result.stderr


def test_kill_9_of_a_ray_ingest_leaves_a_consistent_collection_that_a_rerun_completes(tmp_path, ray_head, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(20):
        (corpus / f"note-{i:02}.md").write_text(
            f"# Note {i}\n\n" + "\n\n".join(f"Paragraph {j} of note {i} about pump {i * 7 + j}." * 6 for j in range(12)))
    home = tmp_path / "home"
    env = {**os.environ, "DOCSTACK_HOME": str(home), "DOCSTACK_MODELS_DIR": str(SHARED_MODELS),
           "DOCSTACK_WRITE_BATCH": "8", "DOCSTACK_RAY_ADDRESS": ray_head.address}
    collection = home / "collections" / "default"
    assert kill_while_writing([sys.executable, "-m", "docstack.cli", "ingest", str(corpus), "--json"], env,
                              collection, 0.2), "the ingest finished before it could be killed"
    store = SqliteIndex(collection, embedder.name, embedder.dimension)
    assert store.verify() == []
    kept = store.stats().documents
    store.close()
    assert kept < 20

    rerun = run_cli(["ingest", str(corpus), "--json"], home, DOCSTACK_RAY_ADDRESS=ray_head.address)
    assert rerun.returncode == 0, rerun.stderr
    assert (json.loads(rerun.stdout)["unchanged"], json.loads(rerun.stdout)["files"]) == (kept, 20 - kept)
    store = SqliteIndex(collection, embedder.name, embedder.dimension)
    assert store.verify() == [] and store.stats().documents == 20
    store.close()


def test_a_file_prepared_elsewhere_ends_with_its_warnings_and_error(tmp_path, corpus):
    """What a Ray task runs, here in this process: documents, then `Finished` (never an exception,
    so the error crosses to the writer as the local path reports it)."""
    recipe = Recipe("sentence-transformers/all-MiniLM-L6-v2", 16, str(SHARED_MODELS), "auto", 200, 40)
    notes, broken = corpus / "notes.md", corpus / "broken.pdf"
    good = list(prepare_whole(recipe, Pending(notes, str(notes), "0" * 64, 1, 0.0), [Part(notes)]))
    assert [type(e).__name__ for e in good] == ["Document", "Finished"] and good[-1] == Finished([])
    assert good[0].chunks[0].text == "# Notes" and good[0].vectors.shape == (len(good[0].chunks), 384)
    bad = list(prepare_whole(recipe, Pending(broken, str(broken), "1" * 64, 1, 0.0), [Part(broken)]))
    assert len(bad) == 1 and bad[0].error.startswith("not a readable PDF")
