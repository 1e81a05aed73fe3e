"""Document structure from PDFs: bookmarks and page labels become the section tree, pages are cut
where a section starts so that chunks carry their section's path, and without bookmarks headings
are found in the text (numbered, larger, bold) while look-alikes (a numbered list, a line of a
table of contents, a table's header row, a caption, a running header) are not. The PDFs are
drawn here with reportlab."""

from __future__ import annotations

from pathlib import Path

from docstack.ingest.readers import read_document, reader_for
from docstack.ingest.structure import OutlineBuilder, Structure

BODY = ("Helvetica", 11)
LINE = 16


def _write(path: Path, pages: list[list], labels: bool = False) -> Path:
    """One PDF page per list. An item is a body line (str), a line in its own type
    ((text, font, size)), a row of table cells ([cells], font) set 110 points apart, or a
    bookmark at that height (("#", title, level)), or to its page with no height (("#", title,
    level, "no top")), or words in bold run into a paragraph, that many points before the rest
    (("run-in", bold, rest, points))."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=(612, 792))
    marks = 0
    for page in pages:
        y = 740
        for item in page:
            if isinstance(item, tuple) and item[0] == "#":
                marks += 1
                if item[3:] == ("no top",):
                    pdf.bookmarkPage(f"m{marks}", fit="XYZ", left=0, top=None)
                else:
                    pdf.bookmarkPage(f"m{marks}", fit="XYZ", left=0, top=y + 20)
                pdf.addOutlineEntry(item[1], f"m{marks}", level=item[2])
                continue
            if isinstance(item, tuple) and item[0] == "run-in":
                _, bold, rest, gap = item
                pdf.setFont("Helvetica-Bold", BODY[1])
                pdf.drawString(72, y, bold)
                pdf.setFont(*BODY)
                pdf.drawString(72 + pdf.stringWidth(bold, "Helvetica-Bold", BODY[1]) + gap, y, rest)
                y -= LINE
                continue
            if isinstance(item, list):
                cells, font = item
                pdf.setFont(font, BODY[1])
                for column, cell in enumerate(cells):
                    pdf.drawString(72 + 110 * column, y, cell)
                y -= LINE
                continue
            text, font, size = (item, *BODY) if isinstance(item, str) else item
            y -= max(0, size - BODY[1])  # room above a large line
            pdf.setFont(font, size)
            pdf.drawString(72, y, text)
            y -= LINE + max(0, size - BODY[1])
        pdf.showPage()
    if labels:  # front matter numbered i, ii...; the body from 1
        pdf.addPageLabel(0, "ROMAN_LOWER")
        pdf.addPageLabel(1, "ARABIC", start=1)
    pdf.save()
    return path


def _prose(topic: str, n: int = 3) -> list[str]:
    return [f"The {topic} paragraph line {i} explains what the reader needs to know about it here." for i in range(n)]


def _bookmarked(path: Path) -> Path:
    """Four pages: a preface (page "i"), chapter 1 with sections 1.1 (part-way down page 2) and
    1.2 (part-way down page 3), chapter 2 on page 4 with two headings "Examples" of which the
    second is bookmarked. The bookmarks of the sections leave their numbers out, as the Octave
    manual's do; the one of 1.2 points at its page with no height, and a body line above its
    heading reads "Mounting" too."""
    examples = ("Examples", "Helvetica-Bold", 14)
    return _write(path, [
        [("#", "Preface", 0), ("Preface", "Helvetica-Bold", 18), *_prose("preface")],
        [("#", "1 Installation", 0), ("1 Installation", "Helvetica-Bold", 18), *_prose("installation"),
         ("#", "Unpacking", 1), ("1.1 Unpacking", "Helvetica-Bold", 14), *_prose("unpacking")],
        [*_prose("crate", 10), "Mounting", *_prose("crate", 2), ("#", "Mounting", 1, "no top"),
         ("1.2 Mounting", "Helvetica-Bold", 14), *_prose("mounting")],
        [("#", "2 Operation", 0), ("2 Operation", "Helvetica-Bold", 18), *_prose("operation"), examples,
         *_prose("first example"), ("#", "Examples", 1), examples, *_prose("second example")],
    ], labels=True)


def _structure(path: Path) -> tuple[Structure, list]:
    """What ingest stores: the reader's outline and records through OutlineBuilder."""
    reader = reader_for(path)
    builder = OutlineBuilder(reader.outline(path))
    records = read_document(path)
    for record in records:
        builder.see_record(record.section, record.page, record.label)
    return builder.build(max(r.page for r in records)), records


def test_bookmarks_become_the_section_tree_with_pages_end_pages_and_labels(tmp_path):
    structure, _ = _structure(_bookmarked(tmp_path / "manual.pdf"))
    assert structure.source == "bookmarks"
    assert [(s.title, s.level, s.page, s.end_page) for s in structure.sections] == [
        ("Preface", 1, 1, 1),
        ("1 Installation", 1, 2, 3),  # chapter 2 starts a fresh page
        ("Unpacking", 2, 2, 3),  # 1.2 starts part-way down page 3, which both share
        ("Mounting", 2, 3, 3),
        ("2 Operation", 1, 4, 4),
        ("Examples", 2, 4, 4),
    ]
    assert structure.sections[2].path == "1 Installation > Unpacking"
    assert structure.page_labels == ["i", "1", "2", "3"]
    assert structure.label(3) == "2"


def test_a_page_is_cut_where_a_bookmarked_section_starts(tmp_path):
    records = read_document(_bookmarked(tmp_path / "manual.pdf"))
    assert [(r.page, r.label, r.section, r.text.splitlines()[0]) for r in records] == [
        (1, "i", "Preface", "Preface"),
        (2, "1", "1 Installation", "1 Installation"),
        (2, "1", "1 Installation > Unpacking", "1.1 Unpacking"),  # the title found despite its number
        (3, "2", "1 Installation > Unpacking", _prose("crate")[0]),  # the section goes on over the page
        (3, "2", "1 Installation > Mounting", "1.2 Mounting"),  # the heading, not the body line above it
        (4, "3", "2 Operation", "2 Operation"),
        (4, "3", "2 Operation > Examples", "Examples"),
    ]
    installation = records[1].text
    assert "installation paragraph" in installation and "unpacking" not in installation.lower()
    assert "\nMounting\n" in records[3].text
    # Of two headings alike, the one nearest below the bookmark's destination.
    assert "first example" in records[5].text and "first example" not in records[6].text


def test_chunks_carry_their_sections_path_and_the_structure_is_stored(docstack, tmp_path):
    path = _bookmarked(tmp_path / "manual.pdf")
    report = docstack.ingest([path])
    assert report.files == 1 and not report.errors
    index = docstack.library.index()
    chunks = index.chunks(str(path.resolve()))
    sections = {c.section for c in chunks}
    assert sections == {"Preface", "1 Installation", "1 Installation > Unpacking", "1 Installation > Mounting",
                        "2 Operation", "2 Operation > Examples"}
    for chunk in chunks:  # no chunk straddles two sections
        topics = {t for t in ("installation paragraph", "unpacking paragraph", "crate", "mounting paragraph")
                  if t in chunk.text}
        assert len(topics) <= 1 or topics == {"unpacking paragraph", "crate"}, chunk.text
    [mounting] = [c for c in chunks if "mounting paragraph" in c.text]
    assert mounting.section == "1 Installation > Mounting" and mounting.page == 3
    stored = Structure.from_json(index.structure(str(path.resolve())))
    assert stored.source == "bookmarks" and stored.page_labels == ["i", "1", "2", "3"]
    assert [(s.path, s.page, s.end_page) for s in stored.sections][3] == ("1 Installation > Mounting", 3, 3)


def _unmarked(path: Path) -> Path:
    """No bookmarks; a running header in bold on every page; a contents page; a numbered list; a
    numbered line out of sequence; a table whose header row is bold; a bold caption; a bold word
    in a paragraph; a paragraph in bold; code in bold; the title and axes of a chart; headings
    numbered in bold, numbered in body type (1.1), unnumbered in larger type (Safety Notes), and
    run into their paragraph (Priming: bold, then an em)."""
    header = ("ACME Pump Manual", "Helvetica-Bold", 11)
    return _write(path, [
        [header, ("Contents", "Helvetica-Bold", 18),
         ("1 Installation . . . . . . . . . . . . 2", "Helvetica-Bold", 11), "1.1 Unpacking . . . . . . . . . . . . 2",
         ("2 Operation and Daily Care 4", "Helvetica-Bold", 11),
         ("Spare Parts and Service..............ix", "Helvetica-Bold", 11), *_prose("contents", 6)],
        [header, ("1 Installation", "Helvetica-Bold", 18), *_prose("installation"), "5 Bolts hold the base",
         *_prose("bolts"), "1 Remove the cover", "2 Lift the pump out", "3 Check the seals", *_prose("list"),
         "1.1 Unpacking", *_prose("unpacking")],
        [header, *_prose("crate"), ("Safety Notes", "Helvetica", 16), *_prose("safety"),
         ("Always switch the power off before", "Helvetica-Bold", 11),
         ("opening the housing.", "Helvetica-Bold", 11), ("Head over flow", "Helvetica-Bold", 12), "Head", "Flow m3/h",
         [["Model", "Flow", "Pressure", "Noise"], "Helvetica-Bold"],
         [["P-100", "20", "3.5", "41"], "Helvetica"], [["P-200", "35", "4.0", "44"], "Helvetica"],
         ("Figure 2: Pump curve", "Helvetica-Bold", 11), *_prose("curve")],
        [header, ("2 Operation", "Helvetica-Bold", 18), *_prose("operation"), ("2.1 Starting", "Helvetica-Bold", 14),
         *_prose("starting"), ("Mode=auto|manual", "Courier-Bold", 11), *_prose("mode"),
         ("run-in", "Priming", "Fill the pump with water before the first start.", 11), *_prose("priming"),
         ("run-in", "Warning", "never let the pump run dry for long.", 3), *_prose("dry")],
    ])


def test_headings_are_found_in_a_pdf_without_bookmarks(tmp_path):
    structure, records = _structure(_unmarked(tmp_path / "plain.pdf"))
    assert structure.source == "headings"
    assert [(s.title, s.level, s.page) for s in structure.sections] == [
        ("Contents", 1, 1),
        ("1 Installation", 1, 2),
        ("1.1 Unpacking", 2, 2),  # numbered, in body type: its number follows 1
        ("Safety Notes", 2, 3),  # unnumbered, larger than the body: ranked below the chapters' size
        ("2 Operation", 1, 4),
        ("2.1 Starting", 2, 4),
        ("Priming", 3, 4),  # below the deepest level of the headings set larger
    ]
    by_section = {r.section: r.text for r in records if r.page != 3}
    # The contents lines, the list, the table, the caption and the running header stay body text.
    assert "1.1 Unpacking . . ." in by_section["Contents"]
    assert "\n2 Operation and Daily Care 4\nSpare Parts" in by_section["Contents"]
    assert "1 Remove the cover\n2 Lift the pump out\n3 Check the seals" in by_section["1 Installation"]
    assert "\n5 Bolts hold the base\n" in by_section["1 Installation"]
    safety = next(r.text for r in records if r.section == "1 Installation > Safety Notes")
    assert "Model Flow Pressure Noise\nP-100 20 3.5 41" in safety and "Figure 2: Pump curve" in safety
    assert "\nAlways switch the power off before\nopening the housing.\n" in safety
    assert "\nHead over flow\nHead\n" in safety
    assert not any("ACME Pump Manual" in r.text for r in records)
    assert "\nWarning never let the pump run dry" in by_section["2 Operation > 2.1 Starting > Priming"]
    assert "\nMode=auto|manual\n" in by_section["2 Operation > 2.1 Starting"]
    assert [r.section for r in records if r.page == 3] == ["1 Installation > 1.1 Unpacking",
                                                           "1 Installation > Safety Notes"]
