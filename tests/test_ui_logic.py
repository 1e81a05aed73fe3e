"""The web app's logic without a browser: evidence, previews, uploads, the chat transcript, and
the pages themselves through Streamlit's AppTest (no model needed on these paths)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docstack import Answer, Citation, SafetyReport, refusal
from docstack.evidence import PagePreviews, best_sentence, claims
from docstack.rag.conversation import QuestionRewriter, Turn, standalone
from docstack.ui.transcript import ChatTurn, blocked, history, to_markdown
from tests.conftest import ROOT
from tests.pdfs import write_pdf

APP = str(ROOT / "ui" / "app.py")


def test_standalone_takes_the_question_out_of_the_reply():
    assert standalone("Who services it?", 'Rewritten question: "Who services the Zephyr-9 pump?"\n') == \
        "Who services the Zephyr-9 pump?"
    assert standalone("Who services it?", "\n\nWho services the pump?\nExplanation: ...") == "Who services the pump?"
    assert standalone("Who services it?", "   ") == "Who services it?"
    rambling = "The maintenance crew services the pump. " * 20  # an answer, not a question
    assert standalone("Who services it?", rambling) == "Who services it?"


def test_no_history_means_no_model_call():
    def chat(messages, tokens):
        raise AssertionError("the model was called for a first question")

    assert QuestionRewriter(chat).run("What is the pump?", []) == "What is the pump?"


def test_rewrite_prompt_carries_the_recent_turns_without_markers():
    seen = []

    def chat(messages, tokens):
        seen.append(messages)
        return iter(["Who services the Zephyr-9 pump?"])

    turns = [Turn(f"old question {i}", f"old answer {i} [1].") for i in range(5)]
    result = QuestionRewriter(chat).run("Who services it?", turns)
    assert result == "Who services the Zephyr-9 pump?"
    prompt = seen[0][-1]["content"]
    assert "old question 4" in prompt and "old question 1" not in prompt  # only the last 3 turns
    assert "[1]" not in prompt and "Who services it?" in prompt


def test_claims_are_the_sentences_carrying_the_marker():
    answer = "The pump is serviced every 42 days [1]. The canteen serves soup [2]. Both apply [1, 2]."
    assert claims(answer, 2) == "The canteen serves soup. Both apply."
    assert claims(answer, 1) == "The pump is serviced every 42 days. Both apply."
    assert claims("No markers here.", 3) == "No markers here."


def test_best_sentence_is_the_one_closest_to_the_claim(embedder):
    passage = ("Welcome to the plant. The Zephyr-9 pump must be serviced every 42 days. "
               "Emergency exits are at the north end.")
    start, end = best_sentence(passage, "How often is the pump serviced? Every 42 days.", embedder.embed)
    assert passage[start:end].strip() == "The Zephyr-9 pump must be serviced every 42 days."
    assert best_sentence("One sentence only.", "anything", embedder.embed) == (0, len("One sentence only."))


def test_page_previews_render_once_and_follow_file_changes(tmp_path):
    pdf = write_pdf(tmp_path / "manual.pdf", ["first page", "second page"])
    previews = PagePreviews(tmp_path / "cache", dpi=50)
    picture = previews.page(pdf, 2)
    assert picture is not None and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(picture) as image:  # A4 at 50 dpi is about 413 x 585; the blank lower page is cut off
        assert image.width in (413, 414) and image.height < 100
    made = picture.stat().st_mtime_ns
    assert previews.page(pdf, 2) == picture and picture.stat().st_mtime_ns == made  # cached, not redrawn
    write_pdf(pdf, ["new first page", "new second page"])
    os.utime(pdf, ns=(made + 10**9, made + 10**9))
    assert previews.page(pdf, 2) != picture  # a new version of the file gets new pictures
    assert previews.page(pdf, 3) is None
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    assert previews.page(tmp_path / "broken.pdf", 1) is None
    assert previews.page(tmp_path / "notes.md", 1) is None


def test_uploads_go_in_and_a_bad_file_is_reported_and_not_kept(docstack, tmp_path):
    pdf = write_pdf(tmp_path / "manual.pdf", ["The Zephyr-9 pump is serviced every 42 days.", "Exits are north."])
    files = [("manual.pdf", pdf.read_bytes()), ("notes.md", b"# Notes\n\nSoup on Fridays.\n"),
             ("broken.pdf", b"%PDF-1.7 truncated"), (".hidden", b"x")]
    seen = []
    report, saved = docstack.ingest_uploads(files, "up", seen.append)
    assert (report.files, report.pages) == (2, 3)
    assert sorted(Path(e["path"]).name for e in report.errors) == [".hidden", "broken.pdf"]
    folder = docstack.settings.home / "uploads" / "up"
    assert sorted(p.name for p in folder.iterdir()) == ["manual.pdf", "notes.md"]
    assert seen[-1].files_done == seen[-1].files_total == 3
    docs = {d.name: d for d in docstack.documents("up")}
    assert set(docs) == {"manual.pdf", "notes.md"}
    assert (docs["manual.pdf"].pages, docs["manual.pdf"].bytes) == (2, len(pdf.read_bytes()))
    assert docs["notes.md"].chunks >= 1
    assert docstack.index_bytes("up") > 0


def _turn(answer_text: str, **extra) -> ChatTurn:
    answer = Answer(answer_text, [Citation(1, 7, "/docs/manual.pdf", 2, "The pump is serviced every 42 days.")],
                    "llamacpp/qwen", False, 3.2, first_token_seconds=1.1)
    for key, value in extra.items():
        setattr(answer, key, value)
    from docstack.evidence import Evidence
    card = Evidence(1, "/docs/manual.pdf", 2, "Maintenance", "", "The pump is serviced every 42 days.", "")
    return ChatTurn("Who services it?", "Who services the pump?", answer, [card])


def test_a_markdown_passage_shows_as_one_quoted_line_with_its_sentence_in_view():
    from docstack import Evidence
    from docstack.ui.chat_page import BEFORE_CHARS, passage_html

    before = "# Llama 3.2\n\n## Model Overview\n\n" + "Earlier text about other things. " * 30
    card = Evidence(1, "models.md", None, None, before, "It has a 128K window.", "\n\n## Next\n\nMore.")
    shown = passage_html(card)
    assert "\n" not in shown and "#" not in shown  # one line: Markdown cannot render the headings
    assert shown.startswith('<blockquote class="passage">… ') and "<mark>It has a 128K window.</mark>" in shown
    assert len(shown.split("<mark>")[0]) < BEFORE_CHARS + 40  # the marked sentence comes early
    assert "<br>Next<br>More." in shown


def test_markdown_export_has_questions_answers_and_citations():
    text = to_markdown([_turn("Every 42 days [1].")], "plant")
    assert "## 1. Who services it?" in text and "*Searched as:* Who services the pump?" in text
    assert "Every 42 days [1]." in text
    assert "[1] manual.pdf, page 2, Maintenance — `/docs/manual.pdf`" in text
    assert "> The pump is serviced every 42 days." in text
    assert "first token 1.1 s · total 3.2 s" in text


def test_blocked_reads_the_answers_safety_report():
    assert blocked(_turn("fine").answer) is None
    report = SafetyReport(blocked=True, stage="output", category="pii", shield="pii")
    assert blocked(_turn("no", safety=report).answer) is report
    assert refusal(report.stage, report.category) == \
        "Refused by docstack's safety shields: the answer was blocked at the output stage (category: pii)."
    assert blocked(_turn("ok", safety=SafetyReport()).answer) is None
    assert history([_turn("Every 42 days [1]."), ChatTurn("q", "q", error="boom")]) == \
        [Turn("Who services the pump?", "Every 42 days [1].")]


# -- pages ---------------------------------------------------------------------------------------
@pytest.fixture
def app_env(docstack, monkeypatch):
    from docstack.ui.common import docstack as shared

    monkeypatch.setenv("DOCSTACK_HOME", str(docstack.settings.home))
    monkeypatch.setenv("DOCSTACK_STACK_PORT", str(docstack.settings.stack_port))
    shared.clear()  # the app's DocStack must read this test's settings
    yield docstack
    shared.clear()


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=60)


def test_chat_page_without_documents_points_to_documents(app_env):
    page = _app()
    page.run()
    assert not page.exception, page.exception
    assert "No documents yet" in page.info[0].value
    assert not page.chat_input  # nothing to ask about yet


def test_documents_page_lists_deletes_and_creates(app_env, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nAlpha text.\n")
    (tmp_path / "docs" / "b.md").write_text("# B\n\nBeta text.\n")
    app_env.ingest([tmp_path / "docs"], collection="notes")
    page = _app()
    page.run()
    page.switch_page("documents_page.py").run()
    assert not page.exception, page.exception
    assert page.subheader[0].value == "2 documents in notes"
    table = page.dataframe[0].value
    assert list(table["file"]) == ["a.md", "b.md"] and list(table["pages"]) == [1, 1]
    page.multiselect[0].select(str((tmp_path / "docs" / "a.md").resolve()))
    page.button[0].click().run()  # the form's "Delete selected"
    assert not page.exception, page.exception
    assert [d.name for d in app_env.documents("notes")] == ["b.md"]
    assert page.subheader[0].value == "1 documents in notes"

    new = next(t for t in page.text_input if t.label == "New collection")
    new.input("handbook")
    next(b for b in page.button if b.label == "Create").click().run()
    assert not page.exception, page.exception
    assert "handbook" in app_env.collections()
    assert page.sidebar.selectbox[0].value == "handbook"


def test_status_page_without_a_stack_says_why_no_model_answers(app_env):
    app_env.ingest([ROOT / "docstack" / "samples" / "faq.md"], collection="samples")
    page = _app()
    page.run()
    page.switch_page("status_page.py").run()
    assert not page.exception, page.exception
    services, models, collections = (frame.value for frame in page.dataframe)
    assert list(services["service"]) == ["model", "stack", "ui"]
    assert set(services["state"]) == {"not running"}
    # Each model of the profile is listed with why it cannot answer now, and none is offered.
    assert len(models) >= 1 and not models["usable"].any()
    assert all("docstack up" in reason or "model server" in reason for reason in models["reason"])
    assert page.selectbox(key="opt_model").options == ["(default)"]
    assert list(collections["collection"]) == ["samples"] and collections["documents"][0] == 1
    assert any("Harmful content: keyword rules only" in m.value for m in page.markdown)  # honest about it
    page.slider(key="opt_k").set_value(5).run()
    page.switch_page("chat_page.py").run()
    assert page.session_state["opt_k"] == 5  # kept while the Status page is not drawn
