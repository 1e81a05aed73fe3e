from __future__ import annotations

import pytest

from docstack.ingest.readers import ReadError, read_document
from tests.pdfs import write_pdf


def test_pdf_pages_are_one_based(tmp_path):
    path = write_pdf(tmp_path / "doc.pdf", ["Alpha page text.", "Beta page text.", "Gamma page text."])
    records = read_document(path)
    assert [r.page for r in records] == [1, 2, 3]
    assert "Beta" in records[1].text


def test_markdown_sections_follow_heading_path(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nIntro.\n\n## Install\n\nRun make.\n\n```\n# not a heading\n```\n\n"
                    "### Offline\n\nNo network.\n\n## Use\n\nAsk.\n")
    records = read_document(path)
    sections = [r.section for r in records]
    assert sections == ["Guide", "Guide > Install", "Guide > Install > Offline", "Guide > Use"]
    assert "# not a heading" in records[1].text
    assert all(r.page is None for r in records)


def test_corrupt_pdf_and_binary_markdown_are_errors(tmp_path):
    bad_pdf = tmp_path / "bad.pdf"
    bad_pdf.write_bytes(b"%PDF-1.4\n garbage that is not a pdf")
    with pytest.raises(ReadError):
        read_document(bad_pdf)
    binary = tmp_path / "x.md"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(ReadError, match="binary"):
        read_document(binary)


def test_unsupported_type(tmp_path):
    path = tmp_path / "sheet.xyz"
    path.write_text("x")
    with pytest.raises(ReadError, match="unsupported"):
        read_document(path)


def test_a_word_hyphenated_across_a_line_break_is_one_word_again():
    from docstack.ingest.readers.pdf import _cleaned

    # PDFium's text of the Octave manual, page 31: U+FFFE marks the hyphenation of "session".
    assert _cleaned("how to start an Octave ses\ufffesion, get help") == ["how to start an Octave session, get help"]
