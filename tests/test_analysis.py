"""Long-document analysis on real files through the real index and embedder: the outline from a
PDF's bookmarks with printed page labels, every mention of a term, and the job plumbing of
summaries and extraction with a stand-in writer (a model's words are not what these test; one
real-model summary is in test_analysis_stack below)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from docstack.analysis.writer import Writer

from docstack import DocstackError
from tests.conftest import run_cli

# (bookmark title, level, pages' text); PDF page 1 is the contents, printed "i"; page 2 is printed "1".
MANUAL = [
    ("Contents", 0, ["Contents. 1 Pumps. 2 Safety. This manual covers the Zephyr-9 pump."]),
    ("1 Pumps", 0, ["The Zephyr-9 pump moves coolant through the plant. It runs on three-phase power."]),
    ("1.1 Servicing", 1, ["The Zephyr-9 must be serviced every 42 days by the maintenance crew.",
                          "Servicing takes two hours. The crew logs every service in the plant journal."]),
    ("1.2 Valves", 1, ["Each pump has a relief valve. The relief valve opens at 8 bar, and a second Relief\n"
                       "Valve guards the return line."]),
    ("2 Safety", 0, ["Safety comes first. Acme Ltd shall pay 5,000 EUR by 1 March 2025 for the annual audit.",
                     "Operators wear gloves near the pump housing."]),
    ("2.1 Emergency stop", 1, ["Press the red button to stop the Zephyr-9 at once. Then close the relief valve.",
                               "Call the supervisor after every emergency stop."]),
]


def write_manual(path: Path, sections=MANUAL) -> Path:
    """A PDF with bookmarks (one per section) and printed page labels i, 1, 2, ..."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    page = 0
    for n, (title, level, pages) in enumerate(sections):
        for k, text in enumerate(pages):
            if k == 0:
                pdf.bookmarkPage(f"s{n}")
                pdf.addOutlineEntry(title, f"s{n}", level=level)
                pdf.setFont("Helvetica-Bold", 16)
                pdf.drawString(72, 780, title)
            pdf.setFont("Helvetica", 11)
            y = 740
            for line in text.split("\n"):
                pdf.drawString(72, y, line)
                y -= 16
            pdf.showPage()
            page += 1
    pdf.addPageLabel(0, "ROMAN_LOWER")
    pdf.addPageLabel(1, "ARABIC", start=1)
    pdf.save()
    return path


@pytest.fixture
def manual(docstack, tmp_path) -> Path:
    path = write_manual(tmp_path / "pump-manual.pdf")
    report = docstack.ingest([path], collection="manuals")
    assert not report.errors
    return path


class CountingWriter:
    """Stands in for the model: 'summarises' a request by repeating its first sentence of text,
    counts its calls, and can be told to fail on the n-th call (a crash part-way)."""

    def __init__(self, window: int = 400, fail_on: int | None = None, reply=None):
        self.calls: list[list[dict]] = []
        self.fail_on = fail_on
        self.reply = reply
        self.writer = Writer("test-model", window, lambda text: len(text) // 2, self.complete)

    def complete(self, messages: list[dict], max_tokens: int) -> str:
        self.calls.append(messages)
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise RuntimeError("the model server went away")
        if self.reply:
            return self.reply(messages)
        text = messages[-1]["content"].split("\n\n", 1)[1]
        longest = max((line for line in text.split("\n") if not line.startswith("[")), key=len)
        return longest.split(". ")[0].rstrip(".") + "."


def use(docstack, fake: CountingWriter, monkeypatch) -> None:
    monkeypatch.setattr(docstack, "writer", lambda model=None: fake.writer)


def test_outline_comes_from_the_bookmarks_with_printed_page_labels(docstack, manual):
    result = docstack.outline("pump-manual", "manuals")
    assert result["pages"] == 9 and result["source"] == "bookmarks"
    got = [(s["title"], s["level"], s["page"], s["page_label"], s["end_page"]) for s in result["sections"]]
    assert got == [("Contents", 1, 1, "i", 1), ("1 Pumps", 1, 2, "1", 5), ("1.1 Servicing", 2, 3, "2", 4),
                   ("1.2 Valves", 2, 5, "4", 5), ("2 Safety", 1, 6, "5", 9), ("2.1 Emergency stop", 2, 8, "7", 9)]


def test_a_document_is_named_by_a_unique_part_and_a_wrong_name_says_what_there_is(docstack, manual, tmp_path):
    docstack.ingest([write_manual(tmp_path / "pump-manual-v2.pdf")], collection="manuals")
    assert docstack.outline(str(manual), "manuals")["document"] == str(manual)
    assert docstack.outline("pump-manual", "manuals")["document"] == str(manual)  # its name, not a part of v2's
    with pytest.raises(DocstackError, match=r"'pump' matches 2 documents .*pump-manual-v2.pdf.*pump-manual.pdf"):
        docstack.outline("pump", "manuals")
    with pytest.raises(DocstackError, match="no document matching 'boiler' in collection 'manuals'"):
        docstack.outline("boiler", "manuals")


def test_mentions_finds_every_occurrence_once_in_document_order_with_labels_and_sections(docstack, manual):
    result = docstack.mentions("relief valve", "pump-manual", "manuals", related=0)
    # page 5 says it twice and once across a line break in another case; page 8 once
    assert result["count"] == 4
    assert [(m["page"], m["page_label"], m["section"]) for m in result["mentions"]] == [
        (5, "4", "1.2 Valves"), (5, "4", "1.2 Valves"), (5, "4", "1.2 Valves"), (8, "7", "2.1 Emergency stop")]
    assert all(m["match"] == "exact" and "relief" in m["quote"].lower() for m in result["mentions"])
    zephyr = docstack.mentions("Zephyr-9", "pump-manual", "manuals", related=0)
    assert [m["page"] for m in zephyr["mentions"]] == [1, 2, 3, 8]
    assert docstack.mentions("Zephyr", "pump-manual", "manuals", related=0)["count"] == 4  # a whole word
    assert docstack.mentions("Zephyr-99", "pump-manual", "manuals", related=0)["count"] == 0


def test_a_concept_in_other_words_and_order_is_found_as_related(docstack, manual):
    # As a printed index lists it: "service, logs" for the page that says "logs every service".
    result = docstack.mentions("service, logs", "pump-manual", "manuals", related=3)
    assert result["count"] == 0
    first = result["mentions"][0]
    assert (first["match"], first["page"], first["section"]) == ("related", 4, "1.1 Servicing")
    assert "logs every service" in first["quote"]


def test_related_passages_are_marked_and_not_counted(docstack, manual):
    result = docstack.mentions("maintenance schedule", "pump-manual", "manuals", related=3)
    assert result["count"] == 0
    related = result["mentions"]
    assert related and all(m["match"] == "related" for m in related)
    assert any("serviced every 42 days" in m["quote"] for m in related)


def test_a_section_summary_cites_pages_and_a_rerun_asks_the_model_nothing(docstack, manual, monkeypatch):
    fake = CountingWriter(window=600)
    use(docstack, fake, monkeypatch)
    first = docstack.summarize("pump-manual", "manuals", section="1 Pumps")
    assert first["scope"]["pages"] == [2, 5] and first["model_calls"] == len(fake.calls) >= 1
    assert first["sentences"] and all(s["pages"] and s["supported"] for s in first["sentences"])
    assert {p for s in first["sentences"] for p in s["pages"]} <= {2, 3, 4, 5}
    assert first["sentences"][0]["page_labels"] == [str(p - 1) for p in first["sentences"][0]["pages"]]
    calls = len(fake.calls)
    again = docstack.summarize("pump-manual", "manuals", section="1 pumps")
    assert len(fake.calls) == calls and again["model_calls"] == 0 and again["sentences"] == first["sentences"]
    docstack.reindex("manuals")  # new chunk ids, the same document
    assert docstack.summarize("pump-manual", "manuals", section="1 Pumps")["model_calls"] == 0


def test_every_request_fits_the_window_and_no_page_is_left_out(docstack, manual, monkeypatch):
    fake = CountingWriter(window=600)  # room for ~3 pages of text per request
    use(docstack, fake, monkeypatch)
    result = docstack.summarize("pump-manual", "manuals", pages=(1, 9))
    assert result["units"] >= 3
    sent = "\n".join(m[-1]["content"] for m in fake.calls)
    assert all(fake.writer.count(m[-1]["content"]) <= 600 - 160 for m in fake.calls)
    for page in range(1, 10):
        assert f"[page {page}]" in sent


def test_a_job_that_fails_part_way_resumes_with_the_units_it_finished(docstack, manual, monkeypatch):
    crashing = CountingWriter(window=600, fail_on=3)
    use(docstack, crashing, monkeypatch)
    with pytest.raises(RuntimeError):
        docstack.summarize("pump-manual", "manuals", pages=(1, 9))
    [job] = docstack.jobs("manuals")
    assert job.state == "failed" and job.done == 2
    fresh = CountingWriter(window=600)
    use(docstack, fresh, monkeypatch)
    result = docstack.summarize("pump-manual", "manuals", pages=(1, 9))
    assert result["cached_units"] == 2 and result["model_calls"] == len(fresh.calls) == result["units"] - 2 + (
        1 if any("Combine" in m[-1]["content"] for m in fresh.calls) else 0)
    assert docstack.jobs("manuals")[0].state == "done"


def test_cancel_stops_a_job_between_units(docstack, manual, monkeypatch):
    def reply(messages):
        if len(fake.calls) == 2:
            docstack.cancel_job(docstack.jobs("manuals")[0].id, "manuals")
        return "The pump runs."

    fake = CountingWriter(window=600, reply=reply)
    use(docstack, fake, monkeypatch)
    with pytest.raises(DocstackError, match="cancelled; 2 of"):
        docstack.summarize("pump-manual", "manuals", pages=(1, 9))
    [job] = docstack.jobs("manuals")
    assert job.state == "cancelled" and job.done == 2 and len(fake.calls) == 2


def test_extraction_keeps_rows_quoted_verbatim_and_drops_invented_ones(docstack, manual, monkeypatch):
    def reply(messages):
        prompt = messages[-1]["content"]
        numbers = dict((s, int(n)) for n, s in re.findall(r"^\[(\d+)\] (.*)$", prompt, re.MULTILINE))
        acme = next(n for s, n in numbers.items() if "Acme Ltd" in s)
        return (f'{{"n": {acme}, "party": "Acme Ltd", "date": "1 March 2025", "amount": "5,000 EUR"}}\n'
                f'{{"n": {acme}, "party": "Bolt plc", "date": "2 May 2025", "amount": "9 EUR"}}\n'
                '{"n": 999, "party": "Acme Ltd"}\n')

    fake = CountingWriter(window=2000, reply=reply)
    use(docstack, fake, monkeypatch)
    result = docstack.extract("pump-manual", "party, date, amount", "manuals")
    assert [(r["party"], r["page"], r["page_label"], r["section"]) for r in result["rows"]] == [
        ("Acme Ltd", 6, "5", "2 Safety")]
    assert result["rows"][0]["quote"] == "Acme Ltd shall pay 5,000 EUR by 1 March 2025 for the annual audit."
    assert result["dropped"] == 2
    # the date and amount patterns chose the sentence from the whole document, not only from search
    assert result["sentences_read"] >= 1 and "Acme Ltd" in fake.calls[0][-1]["content"]
    csv = docstack.extraction_csv(result)
    assert csv.splitlines()[0] == "party,date,amount,quote,page,page_label,section" and "Acme Ltd" in csv
    with pytest.raises(DocstackError, match="--fields names nothing"):
        docstack.extract("pump-manual", " , ", "manuals")


def test_compare_reports_added_removed_and_changed_sections_with_pages(docstack, tmp_path):
    edited = list(MANUAL)
    edited[2] = ("1.1 Servicing", 1, ["The Zephyr-9 must be serviced every 30 days by the maintenance crew.",
                                      MANUAL[2][2][1]])
    del edited[5]  # 2.1 Emergency stop removed
    edited.insert(4, ("1.3 Filters", 1, ["Change the coolant filter every spring."]))
    old, new = write_manual(tmp_path / "v1.pdf"), write_manual(tmp_path / "v2.pdf", edited)
    docstack.ingest([old, new], collection="versions")
    result = docstack.compare("v1.pdf", "v2.pdf", "versions")
    assert [s["title"] for s in result["added"]] == ["1.3 Filters"]
    assert [s["title"] for s in result["removed"]] == ["2.1 Emergency stop"]
    changed = {c["title"]: c for c in result["changed"]}
    assert "1.1 Servicing" in changed and "30 days" in changed["1.1 Servicing"]["summary"]
    assert changed["1.1 Servicing"]["a_pages"][0] == 3 and changed["1.1 Servicing"]["b_pages"][0] == 3
    assert "1.2 Valves" not in changed and "1 Pumps" not in changed


def test_compare_does_not_call_a_markdown_section_moved_to_another_level_changed(docstack, tmp_path):
    (tmp_path / "guide-v1.md").write_text("# Pumps\n\nPumps move coolant.\n\n## Valves\n\nValves open at 8 bar.\n\n"
                                          "### Filters\n\nChange the filter every spring.\n\n# Safety\n\nWear gloves.\n")
    (tmp_path / "guide-v2.md").write_text("# Pumps\n\nPumps move coolant.\n\n## Valves\n\nValves open at 8 bar.\n\n"
                                          "# Safety\n\nWear gloves.\n\n## Filters\n\nChange the filter every spring.\n")
    docstack.ingest([tmp_path / "guide-v1.md", tmp_path / "guide-v2.md"], collection="guides")
    result = docstack.compare("guide-v1.md", "guide-v2.md", "guides")
    assert (result["added"], result["removed"], result["changed"]) == ([], [], [])  # '### Filters' is now '## Filters'


def test_cli_outline_and_mentions_speak_json_and_fail_in_one_line(tmp_path):
    home = tmp_path / "home"
    path = write_manual(tmp_path / "pump-manual.pdf")
    assert run_cli(["ingest", str(path)], home).returncode == 0
    outline = run_cli(["outline", "pump-manual", "--json"], home)
    assert outline.returncode == 0
    assert json.loads(outline.stdout)["sections"][1] == {"title": "1 Pumps", "level": 1, "page": 2,
                                                        "page_label": "1", "end_page": 5}
    found = run_cli(["mentions", "relief valve", "--related", "0", "--json"], home)
    assert json.loads(found.stdout)["count"] == 4
    missing = run_cli(["outline", "boiler"], home)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "no document matching 'boiler'" in missing.stderr


@pytest.mark.stack
def test_a_real_model_summarises_two_pages_with_cited_sentences(running_stack, tmp_path):
    running_stack.ingest([write_manual(tmp_path / "pump-manual.pdf")], collection="analysis-real")
    result = running_stack.summarize("pump-manual", "analysis-real", section="1.1 Servicing")
    assert result["model_calls"] == 1 and result["sentences"]
    assert all(set(s["pages"]) <= {3, 4} for s in result["sentences"])
    assert sum(s["supported"] for s in result["sentences"]) >= 1


def test_ask_answers_a_counting_question_from_every_mention_not_the_top_k(docstack, manual):
    # No model server runs here: the answer is made from the index alone.
    answer = docstack.ask("How many times does the pump manual mention the relief valve?", collection="manuals")
    assert answer.answer.startswith("“relief valve” occurs 4 times in pump-manual.pdf, on 2 pages: "
                                    "page 5 (printed 4) (3 times) [1], page 8 (printed 7) [2].")
    assert [(c.page, c.page_label) for c in answer.citations] == [(5, "4"), (8, "7")]
    assert answer.notices and "whole document" in answer.notices[0] and not answer.abstained
    quoted = docstack.ask("Is 'Zephyr-9' mentioned anywhere?", collection="manuals")
    assert "occurs 4 times" in quoted.answer and len(quoted.citations) == 4


def test_whole_document_questions_are_told_apart_from_ordinary_ones():
    from docstack.analysis.whole import _COMPARE, _COUNT, _EVERY, _SUMMARY, _section, _term

    assert _term("How many times does the manual mention the relief valve?") == "relief valve"
    assert _term("Is FAISS mentioned anywhere in the handbook?") == "FAISS"
    assert _term("List every page that mentions “termination”") == "termination"
    assert _section("Summarise chapter 4 of the manual") == "4"
    assert _section("Give me a summary of the section on relief valves") == "relief valves"
    assert _SUMMARY.search("Please summarize the handbook") and _COMPARE.search("What changed between v1 and v2?")
    for ordinary in ("How often is the pump serviced?", "What does the relief valve do?", "Who pays the audit?"):
        assert not (_SUMMARY.search(ordinary) or _COMPARE.search(ordinary) or _EVERY.search(ordinary))
        assert not _COUNT.search(ordinary) or _term(ordinary) is None
