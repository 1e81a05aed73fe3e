from __future__ import annotations

import os

from tests.pdfs import write_pdf


def test_same_file_by_another_path_is_not_stored_twice(docstack, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha text about pumps.\n")
    write_pdf(docs / "b.pdf", ["Page one.", "Page two about valves."])
    first = docstack.ingest([docs])
    assert (first.files, first.pages) == (2, 3)
    monkeypatch.chdir(tmp_path)
    second = docstack.ingest([os.path.join("docs", "a.md"), "docs"])
    assert (second.files, second.unchanged) == (0, 2)
    assert docstack.store().stats()["documents"] == 2


def test_changed_file_replaces_its_chunks(docstack, tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nThe old text mentions tulips.\n")
    docstack.ingest([path])
    path.write_text("# Notes\n\nThe new text mentions daffodils.\n")
    report = docstack.ingest([path])
    assert report.files == 1
    [hit] = docstack.search("daffodils", k=1)
    assert "daffodils" in hit.text
    assert docstack.store().stats()["chunks"] == 1


def test_bad_files_are_reported_and_the_rest_goes_in(docstack, tmp_path):
    (tmp_path / "good.txt").write_text("Plain text about compressors.")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    report = docstack.ingest([tmp_path])
    assert report.files == 1
    assert sorted((os.path.basename(e["path"]), e["error"]) for e in report.errors)[1] == ("empty.md", "empty file")
    assert {os.path.basename(e["path"]) for e in report.errors} == {"empty.md", "broken.pdf"}
