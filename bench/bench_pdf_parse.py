"""PDF text extraction alone: PDFium (docstack's reader) against pypdf, side by side, one process.

    .venv/bin/python bench/bench_pdf_parse.py [PDF ...]

Prints pages/s for each parser on each PDF (the two `make bench` PDFs by default), and the ratio.
pypdf is a dev dependency, kept for this comparison only."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from docstack.ingest.readers import pdf_page_lines

DEFAULT_PDFS = [Path("/usr/share/doc/texlive-doc/latex/base/source2e.pdf"),
                Path("/usr/share/doc/texlive-doc/generic/pgf/pgfmanual.pdf")]


def pypdf_pages(path: Path) -> int:
    import pypdf

    reader = pypdf.PdfReader(str(path))
    return sum(1 for page in reader.pages if page.extract_text() is not None)


def pdfium_pages(path: Path) -> int:
    return len(pdf_page_lines(path))


def timed(parse, path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    pages = parse(path)
    return pages, time.perf_counter() - started


def main() -> None:
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings on every page otherwise
    for path in map(Path, sys.argv[1:]) if len(sys.argv) > 1 else DEFAULT_PDFS:
        if not path.is_file():
            print(json.dumps({"file": str(path), "error": "not found: `make bench` installs it"}))
            continue
        pages, pdfium_s = timed(pdfium_pages, path)
        _, pypdf_s = timed(pypdf_pages, path)
        print(json.dumps({"file": path.name, "pages": pages,
                          "pdfium_s": round(pdfium_s, 2), "pdfium_pages_per_s": round(pages / pdfium_s),
                          "pypdf_s": round(pypdf_s, 2), "pypdf_pages_per_s": round(pages / pypdf_s),
                          "pdfium_speedup": round(pypdf_s / pdfium_s, 1)}), flush=True)


if __name__ == "__main__":
    main()
