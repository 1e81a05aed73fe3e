from __future__ import annotations

import os

import pytest
from docstack.stack.client import StackClient
from docstack.rag.prompt import ABSTAIN_TEXT

from docstack import DocStack, Settings
from tests.conftest import SHARED_MODELS, free_port
from tests.fakes import FakeOpenAI
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
    assert docstack.library.index().stats().documents == 2


def test_changed_file_replaces_its_chunks(docstack, tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nThe old text mentions tulips.\n")
    docstack.ingest([path])
    path.write_text("# Notes\n\nThe new text mentions daffodils.\n")
    report = docstack.ingest([path])
    assert report.files == 1
    [hit] = docstack.search("daffodils", k=1)
    assert "daffodils" in hit.text
    assert docstack.library.index().stats().chunks == 1


def test_bad_files_are_reported_and_the_rest_goes_in(docstack, tmp_path):
    tmp_path = tmp_path / "in"
    tmp_path.mkdir()
    (tmp_path / "good.txt").write_text("Plain text about compressors.")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    report = docstack.ingest([tmp_path])
    assert report.files == 1
    assert sorted((os.path.basename(e["path"]), e["error"]) for e in report.errors)[1] == ("empty.md", "empty file")
    assert {os.path.basename(e["path"]) for e in report.errors} == {"empty.md", "broken.pdf"}
    assert report.skipped == [{"path": str(tmp_path / "photo.jpg"), "reason": "unsupported file type '.jpg'"}]


def test_sync_forgets_deleted_files_and_remove_forgets_on_request(docstack, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.md").write_text(f"# {name}\n\nText about item {name}.\n")
    docstack.ingest([folder])
    (folder / "b.md").unlink()
    report = docstack.ingest([folder], sync=True)
    assert (report.removed, report.unchanged) == (1, 2)
    assert docstack.remove([folder / "a.md"]) == [str((folder / "a.md").resolve())]
    assert [os.path.basename(d.path) for d in docstack.library.index().documents()] == ["c.md"]
    assert docstack.library.index().verify() == []


def test_identical_content_is_stored_once(docstack, tmp_path):
    (tmp_path / "one.md").write_text("# Same\n\nIdentical words in two files.\n")
    (tmp_path / "two.md").write_text("# Same\n\nIdentical words in two files.\n")
    report = docstack.ingest([tmp_path])
    assert (report.files, report.duplicates) == (1, 1)
    assert docstack.library.index().stats().documents == 1


def test_collections_list_delete_and_reindex(docstack, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nAlpha about turbines.\n")
    docstack.ingest([tmp_path], collection="first")
    docstack.ingest([tmp_path], collection="second")
    assert set(docstack.collections()) == {"first", "second"}
    report = docstack.reindex("first")
    assert report.files == 1 and docstack.collections()["first"].chunks == 1
    assert docstack.search("turbines", collection="first")[0].text.endswith("Alpha about turbines.")
    docstack.delete_collection("second")
    assert set(docstack.collections()) == {"first"}


def test_large_text_goes_in_bounded_parts(docstack, tmp_path, monkeypatch):
    from docstack.ingest import pipeline

    monkeypatch.setattr(pipeline, "MAX_RECORD_CHARS", 4_000)
    monkeypatch.setattr(pipeline, "PART_CHUNKS", 8)
    writes = []
    store = docstack.library.index(create=True)
    original = store.write
    monkeypatch.setattr(store, "write", lambda docs: (writes.append([len(d.chunks) for d in docs]), original(docs)))
    paragraphs = [f"Paragraph {i} talks about valve {i} and its service interval." for i in range(600)]
    text = "\n\n".join(paragraphs)
    (tmp_path / "big.txt").write_text(text)
    report = docstack.ingest([tmp_path / "big.txt"])
    assert report.files == 1 and report.chunks > 8
    assert max(n for batch in writes for n in batch) <= 8
    assert docstack.library.index().verify() == []
    stored = docstack.library.index().fetch([h.chunk_id for h in docstack.search("valve 599 service interval", k=3)])
    assert any(text[c.start:c.end] == c.text for c in stored.values()), "offsets must point into the file's text"


def test_bad_inputs_each_get_one_line_and_the_rest_goes_in(docstack, tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\nA fine document about pumps.\n")
    (tmp_path / "zero.txt").write_bytes(b"")
    (tmp_path / "binary.md").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me, na\xefve r\xe9sum\xe9 about boilers.".encode("latin-1"))
    (tmp_path / "loop.md").symlink_to(tmp_path / "loop.md")
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "truncated.pdf").write_bytes(write_pdf(tmp_path / "whole.pdf", ["Some text"]).read_bytes()[:300])
    (tmp_path / "whole.pdf").unlink()
    report = docstack.ingest([tmp_path, tmp_path / "missing.pdf"])
    errors = {os.path.basename(e["path"]): e["error"] for e in report.errors}
    assert report.files == 2, report  # good.md and latin1.txt
    assert set(errors) == {"zero.txt", "binary.md", "loop.md", "pipe.txt", "truncated.pdf", "missing.pdf"}
    assert errors["zero.txt"] == "empty file" and "binary" in errors["binary.md"]
    assert errors["pipe.txt"] == "not a regular file" and errors["missing.pdf"] == "no such file or directory"
    assert all("\n" not in e for e in errors.values())
    assert "résumé" in docstack.search("boilers", k=1)[0].text
    assert docstack.library.index().verify() == []


def test_pdf_failing_in_a_later_range_keeps_the_version_stored_before(docstack, tmp_path, monkeypatch):
    """A large PDF is chunked and embedded range by range; a range that fails to parse must not
    leave the file half replaced."""
    from docstack.ingest import pipeline
    from docstack.ingest.readers import ReadError
    from docstack.ingest.readers import pdf as pdf_reader

    monkeypatch.setattr(pdf_reader, "SPLIT_BYTES", 0)
    monkeypatch.setattr(pdf_reader, "SPLIT_PAGES", 3)
    monkeypatch.setattr(pipeline, "PART_CHUNKS", 1)  # parts are ready before the failing range is read
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # parse in this process, where the patch below holds
    path = tmp_path / "manual.pdf"
    parts = ["valve", "gasket", "flange", "rotor", "bearing", "seal", "nozzle"]
    write_pdf(path, [f"Old page {p} describes the {part} of model {p * 7}." for p, part in enumerate(parts, 1)])
    assert docstack.ingest([path]).chunks > 0
    write_pdf(path, [f"New page {p} describes the pump {part} of type {p * 5}." for p, part in enumerate(parts, 1)])
    real = pdf_reader.page_lines

    def failing(pdf, start=0, stop=None):
        if start >= 3:
            raise ReadError("not a readable PDF (damaged page)")
        return real(pdf, start, stop)

    monkeypatch.setattr(pdf_reader, "page_lines", failing)
    report = docstack.ingest([path])
    assert report.errors == [{"path": str(path), "error": "not a readable PDF (damaged page)"}]
    assert report.files == 0 and report.chunks == 0
    [hit] = docstack.search("gasket of model 14", k=1)
    assert "Old page 2" in hit.text
    assert not docstack.search("pump", k=5, mode="keyword")
    assert docstack.library.index().verify() == []


def test_large_pdf_is_parsed_in_page_ranges_across_workers(docstack, tmp_path, monkeypatch):
    from docstack.ingest.readers import pdf as pdf_reader

    monkeypatch.setattr(pdf_reader, "SPLIT_BYTES", 0)
    monkeypatch.setattr(pdf_reader, "SPLIT_PAGES", 3)  # ranges of 3, 3 and 1 pages
    pages = [f"ACME Handbook\nSection {p} explains the gasket of model {p * 11}.\nPage {p} of 7" for p in range(1, 8)]
    write_pdf(tmp_path / "handbook.pdf", pages)
    (tmp_path / "other.md").write_text("# Other\n\nA second file so that workers are used.\n")
    report = docstack.ingest([tmp_path])
    assert report.files == 2 and report.pages == 8 and not report.errors
    for page in (4, 7):  # the one-page last range drops what the earlier ranges found running
        [hit] = docstack.search(f"gasket of model {page * 11}", k=1)
        assert hit.page == page and f"model {page * 11}" in hit.text
        assert "ACME Handbook" not in hit.text and "of 7" not in hit.text  # running header/footer dropped


def test_scanned_pdf_is_reported_not_silently_empty(docstack, tmp_path):
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(tmp_path / "scan.pdf"))
    pdf.rect(100, 100, 200, 200, fill=1)
    pdf.showPage()
    pdf.save()
    report = docstack.ingest([tmp_path / "scan.pdf"])
    assert report.errors == [{"path": str(tmp_path / "scan.pdf"), "error": "no text layer (scanned?)"}]
    assert any("no text layer (scanned?)" in w["warning"] for w in report.warnings)


def test_a_large_file_reports_progress_while_it_is_embedded(docstack, tmp_path, monkeypatch):
    from docstack.ingest import pipeline

    monkeypatch.setattr(pipeline, "EMBED_STEP", 4)
    monkeypatch.setattr(pipeline, "PART_CHUNKS", 6)
    text = " ".join(f"Clause {n} sets the torque of bolt {n} to {n + 20} newton metres." for n in range(30))
    write_pdf(tmp_path / "spec.pdf", [f"Page {p}. {text}" for p in range(1, 7)])
    seen = []
    report = docstack.ingest([tmp_path / "spec.pdf"], on_progress=seen.append)
    during, end = seen[:-1], seen[-1]
    assert len(during) >= 3, "progress only at the end of the file"
    assert all(p.files_done == 0 and 0 < p.current_share < 1 for p in during)
    assert [p.share for p in during] == sorted(p.share for p in during)
    assert [p.chunks for p in during] == sorted(p.chunks for p in during) and during[-1].chunks == report.chunks
    assert (end.files_done, end.share, end.pages, end.chunks) == (1, 1.0, 6, report.chunks)
    assert docstack.library.index().verify() == []
    [hit] = docstack.search("torque of bolt 17", k=1)
    assert "bolt 17" in hit.text and hit.page is not None


class FakeStack(FakeOpenAI):
    """What an ask reads from Llama Stack: its models and chat completions (OpenAI's protocol, as
    the stack speaks it) and its shields (none registered). Every request is recorded."""

    def handle(self, h, method, path, body):
        if (method, path) == ("GET", "/v1/shields"):
            h.send_json(200, {"data": []})
        else:
            super().handle(h, method, path, body)

    def chats(self) -> list[dict]:
        return [body for path, body in self.requests if path == "/v1/chat/completions"]


@pytest.fixture
def fake_stack():
    fake = FakeStack()
    fake.add("ollama/llama3.2:3b-docstack-8k")
    fake.add("ollama/llama3.2:1b-docstack-8k")
    yield fake
    fake.close()


def test_with_no_chunk_close_enough_the_model_is_never_asked(tmp_path, embedder, fake_stack):
    settings = Settings(home=tmp_path / "home", models_dir=SHARED_MODELS, profile="ollama", safety_names=False,
                        stack_port=free_port(), model_port=free_port(), ui_port=free_port())
    ds = DocStack(settings, embedder=embedder, client=StackClient(fake_stack.url, timeout=30))
    # the input shield's classifier, trained once per machine (as tests/test_safety.py keeps it)
    (tmp_path / "pumps.md").write_text("# Pumps\n\nThe Zephyr pump is serviced every 42 days by the plant crew.\n\n"
                                       "The Boreas valve opens when the pressure passes nine bar.\n")
    ds.ingest([tmp_path / "pumps.md"])
    off_topic = "Which grape varieties grow best on volcanic soil?"
    assert ds.search(off_topic) and all(h.score < settings.min_score for h in ds.search(off_topic))

    answer = ds.ask(off_topic)
    assert answer.abstained and answer.answer == ABSTAIN_TEXT and answer.citations == []
    assert not answer.safety.blocked
    stream = ds.stream(off_topic)
    assert "".join(stream) == ABSTAIN_TEXT and stream.answer.abstained
    assert fake_stack.chats() == [], "an abstention must not ask the model"

    # The same stack answers a question the documents cover: the fake is really reachable.
    answer = ds.ask("How often is the Zephyr pump serviced?")
    assert not answer.abstained and "42 days" in answer.answer and answer.citations
    [chat] = fake_stack.chats()
    assert chat["model"] == answer.model == "ollama/llama3.2:3b-docstack-8k"
    assert "The Zephyr pump is serviced every 42 days" in chat["messages"][0]["content"]
    # and `--model` names the model that is asked
    answer = ds.ask("When does the Boreas valve open?", model="llama3.2-1b")
    assert fake_stack.chats()[-1]["model"] == answer.model == "ollama/llama3.2:1b-docstack-8k"
