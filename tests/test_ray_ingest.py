"""`docstack ingest --ray`: files parsed and embedded as Ray tasks on a real local Ray head give the
same collection, errors and re-run behaviour as the local worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from docstack import DocStack, Settings
from tests.conftest import SHARED_MODELS, run_cli
from tests.pdfs import write_pdf


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_pdf(root / "manual.pdf", [
        "Chapter one explains how to unpack the device and check the parts list.",
        "The Zephyr-9 pump must be serviced every 42 days by the maintenance crew.",
    ])
    (root / "notes.md").write_text("# Notes\n\n## Lunch\n\nThe canteen serves soup on Fridays.\n")
    (root / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    return root


def stored(home: Path) -> dict[str, list[tuple]]:
    """Every document's chunks as (text, page, section, vector), by path."""
    index = DocStack(Settings(home=home, models_dir=SHARED_MODELS)).library.index()
    return {d.path: [(c.text, c.page, c.section, c.vector) for c in index.chunks(d.path)] for d in index.documents()}


def test_ray_ingest_matches_the_local_one_and_a_rerun_is_unchanged(tmp_path, corpus, ray_head):
    local = run_cli(["ingest", str(corpus), "--json"], tmp_path / "local")
    on_ray = run_cli(["ingest", str(corpus), "--json", "--ray", ray_head.address], tmp_path / "ray")
    assert on_ray.returncode == local.returncode == 1, on_ray.stderr
    assert on_ray.stderr == ""
    ray_report, local_report = json.loads(on_ray.stdout), json.loads(local.stdout)
    for key in ("files", "pages", "chunks", "errors", "warnings", "unchanged"):
        assert ray_report[key] == local_report[key], key
    assert [e["path"] for e in ray_report["errors"]] == [str(corpus / "broken.pdf")]

    ray_chunks, local_chunks = stored(tmp_path / "ray"), stored(tmp_path / "local")
    assert ray_chunks.keys() == local_chunks.keys() and len(ray_chunks) == 2
    for path, chunks in ray_chunks.items():
        assert [c[:3] for c in chunks] == [c[:3] for c in local_chunks[path]]
        # One thread per Ray task against several here: sums in another order, same vectors.
        assert np.allclose([c[3] for c in chunks], [c[3] for c in local_chunks[path]], atol=1e-4)

    again = run_cli(["ingest", str(corpus), "--json"], tmp_path / "ray", DOCSTACK_RAY_ADDRESS=ray_head.address)
    again_report = json.loads(again.stdout)
    assert (again_report["files"], again_report["chunks"], again_report["unchanged"]) == (0, 0, 2)


def test_ray_sync_forgets_removed_files(tmp_path, ray_head):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nApples are red.\n")
    (folder / "b.md").write_text("# B\n\nBananas are yellow.\n")
    first = json.loads(run_cli(["ingest", str(folder), "--json", "--ray", ray_head.address], tmp_path / "h").stdout)
    assert (first["files"], first["errors"]) == (2, [])
    (folder / "b.md").unlink()
    (folder / "a.md").write_text("# A\n\nApples are green.\n")
    second = run_cli(["ingest", str(folder), "--sync", "--json", "--ray", ray_head.address], tmp_path / "h")
    assert second.returncode == 0, second.stderr
    assert (json.loads(second.stdout)["files"], json.loads(second.stdout)["removed"]) == (1, 1)
    assert [c[0] for chunks in stored(tmp_path / "h").values() for c in chunks] == ["# A\n\nApples are green."]


def test_a_bad_ray_address_is_one_line_naming_the_setting(tmp_path, corpus):
    result = run_cli(["ingest", str(corpus / "notes.md"), "--ray", "127.0.0.1:1"], tmp_path / "home")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DOCSTACK_RAY_ADDRESS" in lines[0] and "127.0.0.1:1" in lines[0], result.stderr
