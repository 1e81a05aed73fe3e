"""Real PDF files for tests, written with reportlab: one page per string."""

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
