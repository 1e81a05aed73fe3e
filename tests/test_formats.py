"""The readers on real files of each format: PDFs drawn with reportlab, DOCX written with
python-docx, HTML written by hand."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from docstack.ingest.readers import ReadError, read_document, supported
from tests.pdfs import write_pdf

# A warning that escapes a reader would reach the user's terminal: make it fail the test.
pytestmark = pytest.mark.filterwarnings("error")


def _pdf_with_furniture(path: Path, bodies: list[list[str]], footer_first: bool = False) -> Path:
    """Pages with a running header "ACME Manual" and a footer "Page N of M" around their body lines."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    width, height = A4
    for number, lines in enumerate(bodies, start=1):
        footer = f"Page {number} of {len(bodies)}"
        if footer_first:  # like reportlab's onPage hooks: the footer comes first in the content stream
            pdf.drawString(width / 2, 30, footer)
        pdf.drawString(72, height - 40, "ACME Manual")
        for i, line in enumerate(lines):
            pdf.drawString(72, height - 100 - 16 * i, line)
        if not footer_first:
            pdf.drawString(width / 2, 30, footer)
        pdf.showPage()
    pdf.save()
    return path


BODIES = [
    ["Unpack the pump and check the seals.", "Keep the box for returns."],
    ["Mount the pump on a level floor.", "ACME Manual", "The line above is body text, not a header."],
    ["Torque the 4 bolts to 12 Nm.", "Connect the inlet hose."],
    ["Prime the pump with 2 litres of water.", "Open the outlet valve."],
    ["Press start and listen for noise.", "Call service if it rattles."],
]


def _body(page: int) -> list[str]:
    return list(BODIES[page - 1])


@pytest.mark.parametrize("footer_first", [False, True])
def test_pdf_running_header_and_footer_are_dropped(tmp_path, footer_first):
    bodies = [_body(n) for n in range(1, 6)]
    records = read_document(_pdf_with_furniture(tmp_path / "m.pdf", bodies, footer_first))
    assert [r.page for r in records] == [1, 2, 3, 4, 5]
    for record, body in zip(records, bodies, strict=True):
        lines = record.text.splitlines()
        assert not any(line.startswith("Page ") for line in lines)
        assert lines == body
    assert records[1].text.splitlines()[1] == "ACME Manual"


def test_pdf_of_two_pages_keeps_repeated_lines(tmp_path):
    records = read_document(_pdf_with_furniture(tmp_path / "short.pdf", [_body(1), _body(2)]))
    assert [r.page for r in records] == [1, 2]
    for number, record in enumerate(records, start=1):
        assert "ACME Manual" in record.text
        assert f"Page {number} of 2" in record.text
        assert BODIES[number - 1][0] in record.text


def test_pdf_table_rows_stay_on_one_line(tmp_path):
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    rows = [["Model", "Params", "Latency ms", "Notes"], ["small", "7M", "3.5", "fine tuned on docs"],
            ["large", "70M", "35.0", "base model"]]
    table = Table(rows)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey)]))
    path = tmp_path / "table.pdf"
    story = [Paragraph("Benchmark results follow.", getSampleStyleSheet()["BodyText"]), table]
    SimpleDocTemplate(str(path)).build(story)
    lines = read_document(path)[0].text.splitlines()
    assert lines[0] == "Benchmark results follow."
    assert lines[1:] == [" ".join(row) for row in rows]


def test_pdf_columns_are_not_interleaved(tmp_path):
    """Reading lines straight across the page (pypdf's layout mode) would mix the two columns."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    width, height = A4
    column = (width - 120) / 2
    path = tmp_path / "columns.pdf"
    doc = BaseDocTemplate(str(path), pagesize=A4)
    doc.addPageTemplates([PageTemplate(frames=[Frame(50, 50, column, height - 100),
                                               Frame(70 + column, 50, column, height - 100)])])
    style = getSampleStyleSheet()["BodyText"]
    doc.build([Paragraph(f"Left {i} alpha.", style) for i in range(45)]
              + [Paragraph(f"Right {i} beta.", style) for i in range(45)])
    lines = read_document(path)[0].text.splitlines()
    assert lines[:3] == ["Left 0 alpha.", "Left 1 alpha.", "Left 2 alpha."]
    assert not any("Left" in line and "Right" in line for line in lines)


def test_pdf_without_text_layer_warns_and_gives_nothing(tmp_path, caplog):
    from reportlab.pdfgen import canvas

    path = tmp_path / "scan.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.rect(100, 100, 300, 400, fill=1)
    pdf.showPage()
    pdf.save()
    with caplog.at_level(logging.WARNING):
        assert read_document(path) == []
    assert any("no text layer (scanned?)" in r.getMessage() for r in caplog.records)


def test_encrypted_pdf_is_an_error_unless_the_password_is_empty(tmp_path):
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    locked, open_ = tmp_path / "locked.pdf", tmp_path / "open.pdf"
    for path, encrypt in ((locked, "secret"), (open_, StandardEncryption("", ownerPassword="owner", canCopy=0))):
        pdf = canvas.Canvas(str(path), encrypt=encrypt)
        pdf.drawString(72, 700, "Quarterly figures")
        pdf.showPage()
        pdf.save()
    with pytest.raises(ReadError, match=r"^encrypted PDF$"):
        read_document(locked)
    assert [r.text for r in read_document(open_)] == ["Quarterly figures"]


def test_truncated_pdf_is_a_one_line_error(tmp_path):
    whole = write_pdf(tmp_path / "whole.pdf", [f"Page {n} body text." for n in range(1, 6)])
    data = whole.read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReadError, match=r"^not a readable PDF \(.*Data format error") as failure:
        read_document(cut)
    assert "\n" not in str(failure.value)


HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Docs Site</title>
<style>.x { color: red }</style><script>var token = "SCRIPT TEXT";</script></head>
<body>
<header>SITE HEADER</header>
<nav><ul><li>NAV LINK</li></ul></nav>
<div role="navigation">ROLE NAV</div>
<main>
<h1>Guide</h1>
<p>Intro with <b>bold</b> words.</p>
<!-- COMMENT TEXT -->
<h2>Install <a class="headerlink" href="#install">¶</a></h2>
<p>Run make.</p>
<ul><li>First step</li><li>Second step</li></ul>
<h3>Offline</h3>
<p>No network.</p>
<table><tr><th>a</th><th>b</th><th>c</th></tr><tr><td>1</td><td>2</td><td>3</td></tr></table>
<p hidden>HIDDEN TEXT</p><div aria-hidden="true">ARIA HIDDEN</div>
<noscript>NOSCRIPT TEXT</noscript><form><label>FORM TEXT</label></form>
<h2>Use</h2>
<p>Ask.</p>
</main>
<aside>ASIDE TEXT</aside>
<footer>FOOTER TEXT</footer>
</body></html>
"""


def test_html_sections_follow_headings_without_page_chrome(tmp_path):
    path = tmp_path / "guide.html"
    path.write_text(HTML, encoding="utf-8")
    records = read_document(path)
    assert [r.section for r in records] == ["Guide", "Guide > Install", "Guide > Install > Offline", "Guide > Use"]
    assert all(r.page is None for r in records)
    everything = "\n".join(r.text for r in records)
    for chrome in ("SCRIPT", "SITE HEADER", "NAV LINK", "ROLE NAV", "COMMENT", "HIDDEN", "NOSCRIPT", "FORM",
                   "ASIDE", "FOOTER", "color", "¶"):
        assert chrome not in everything
    assert records[0].text == "Guide\n\nIntro with bold words."
    assert records[1].text == "Install\n\nRun make.\n\nFirst step\n\nSecond step"
    assert "a | b | c\n1 | 2 | 3" in records[2].text


def test_html_title_stands_in_for_a_missing_h1_and_charset_is_detected(tmp_path):
    path = tmp_path / "legacy.htm"
    page = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
            "<title>Price list</title></head><body><p>Café crème costs 3 €.</p>"
            "<h2>Extras</h2><p>Naïve pastry.</p></body></html>")
    path.write_bytes(page.encode("cp1252"))
    records = read_document(path)
    assert [(r.section, r.text) for r in records] == [
        ("Price list", "Café crème costs 3 €."), ("Price list > Extras", "Extras\n\nNaïve pastry.")]


def test_html_prefers_the_article_over_the_rest_of_the_page(tmp_path):
    path = tmp_path / "post.html"
    path.write_text("<html><body><div>SIDEBAR TEASER</div><article><header><h1>Post</h1></header>"
                    "<p>Body.</p></article><div>RELATED LINKS</div></body></html>")
    assert [(r.section, r.text) for r in read_document(path)] == [("Post", "Post\n\nBody.")]


def test_xml_flavoured_html_reads_without_warnings(tmp_path):
    """bs4 warns when its HTML parser meets XML; the module's filterwarnings("error") turns an escape into a failure."""
    xhtml, feed = tmp_path / "page.xhtml", tmp_path / "feed.html"
    xhtml.write_text('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
                     "<head><title>Spec</title></head><body><p>Body text.</p></body></html>")
    feed.write_text('<?xml version="1.0"?>\n<feed><entry><p>Entry text.</p></entry></feed>')
    assert [(r.section, r.text) for r in read_document(xhtml)] == [("Spec", "Body text.")]
    assert [r.text for r in read_document(feed)] == ["Entry text."]


def _docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph("Pump Manual", style="Title")
    document.add_paragraph("Read this first.")
    document.add_heading("Install", level=1)
    document.add_paragraph("Mount the pump.")
    document.add_paragraph("")
    document.add_paragraph("Connect the hose.")
    document.add_heading("Offline", level=2)
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["a", "b", "c"], ["1", "2", "3"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(2, 0).merge(table.cell(2, 1)).text = "merged"
    table.cell(2, 2).text = "z"
    document.add_paragraph("After the table.")
    document.add_heading("Use", level=1)
    document.add_paragraph("Press start.")
    document.save(str(path))
    return path


def test_docx_sections_and_table_rows(tmp_path):
    records = read_document(_docx(tmp_path / "manual.docx"))
    assert [(r.section, r.text) for r in records] == [
        ("Pump Manual", "Pump Manual\n\nRead this first."),
        ("Pump Manual > Install", "Install\n\nMount the pump.\n\nConnect the hose."),
        ("Pump Manual > Install > Offline", "Offline\n\na | b | c\n1 | 2 | 3\nmerged | z\n\nAfter the table."),
        ("Pump Manual > Use", "Use\n\nPress start."),
    ]


def test_corrupt_docx_is_an_error(tmp_path):
    path = tmp_path / "broken.docx"
    path.write_bytes(_docx(tmp_path / "good.docx").read_bytes()[:500])
    with pytest.raises(ReadError, match=r"^not a readable DOCX \("):
        read_document(path)
    path.write_bytes(b"plain words, not a zip")
    with pytest.raises(ReadError, match=r"^not a readable DOCX \("):
        read_document(path)


def test_supported_types_and_latin1_text(tmp_path):
    for name in ("a.pdf", "a.HTML", "a.htm", "a.docx", "a.md", "a.txt", "a.rst"):
        assert supported(Path(name)), name
    assert not supported(Path("a.doc"))
    path = tmp_path / "notes.rst"
    path.write_bytes("Café notes\n==========\n".encode("latin-1"))
    assert read_document(path)[0].text.startswith("Café notes")
