"""Real PDF files for tests, written with reportlab: one page per string (or with bookmarks and
printed page labels); and the small corpus several ingest tests share."""

from __future__ import annotations

from pathlib import Path


def write_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle(title or path.stem)
    width, height = A4
    for text in pages:
        y = height - 72
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split():
                if pdf.stringWidth(line + " " + word, "Helvetica", 11) > width - 144:
                    pdf.drawString(72, y, line)
                    y -= 15
                    line = word
                else:
                    line = f"{line} {word}".strip()
            pdf.drawString(72, y, line)
            y -= 22
        pdf.showPage()
    pdf.save()
    return path


def write_manual_and_notes(root: Path) -> Path:
    """A two-page PDF manual (the pump schedule on page 2) and Markdown notes, in `root`."""
    write_pdf(root / "manual.pdf", [
        "Chapter one explains how to unpack the device and check the parts list.",
        "The Zephyr-9 pump must be serviced every 42 days by the maintenance crew.",
    ])
    (root / "notes.md").write_text("# Notes\n\n## Lunch\n\nThe canteen serves soup on Fridays.\n")
    return root


def write_outlined_pdf(path: Path, pages: list[tuple[str | None, int, str]], front: int = 0) -> Path:
    """A PDF with bookmarks: one page per (bookmark title or None, level from 1, text). The first
    `front` pages are numbered i, ii, ... and the pages after them 1, 2, ... (printed labels)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle(path.stem)
    for n, (title, level, text) in enumerate(pages):
        pdf.bookmarkPage(f"page-{n}")
        if title:
            pdf.addOutlineEntry(title, f"page-{n}", level - 1)
        y = A4[1] - 72
        for line in text.split("\n"):
            pdf.drawString(72, y, line)
            y -= 15
        pdf.showPage()
    if front:
        pdf.addPageLabel(0, style="ROMAN_LOWER")
        pdf.addPageLabel(front, style="ARABIC", start=1)
    pdf.save()
    return path
