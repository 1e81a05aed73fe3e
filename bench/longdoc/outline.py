"""Outline quality on two long manuals: the section tree docstack stores for a PDF against the
PDF's own bookmarks, with the bookmarks and without them (headings detected in the text alone).

    .venv/bin/python bench/longdoc/outline.py [--pdf PATH ...] [--json]

The default PDFs are the GNU Octave manual (1,158 pages, 517 bookmarks, printed page "1" on PDF
page 17) and the gnuplot manual (311 pages, 648 bookmarks), from Debian's octave-doc and
gnuplot-doc (`apt-get install octave-doc gnuplot-doc`); a PDF that is not there is skipped with
that hint.

The sections are what `docstack outline DOC --json` returns: the structure ingest stores, built
the same way (the PDF reader's outline and records through `OutlineBuilder`), without embedding
the chunks, which only choose the highlights. The reference is the bookmarks as pypdf reads them,
independently of PDFium. A section matches a bookmark when their normalised titles
(`structure.title_key`: numbering, spacing, punctuation and case aside) and their pages agree;
each bookmark matches once. Printed per PDF:

- with bookmarks: F1 of the stored sections, and `located`, the share of bookmarked sections
  whose first record starts with their title, i.e. where the page was cut at the heading itself
  and not at the top of the page (the chunk boundaries);
- headings only: F1 of the sections detected on a copy of the PDF without its bookmarks (written
  with pypdf to a temporary folder, deleted afterwards), with precision and recall.

Targets: F1 >= 0.95 with bookmarks, >= 0.8 from headings alone."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from docstack.ingest.readers import Record, reader_for
from docstack.ingest.structure import OutlineBuilder, Structure, title_key

PDFS = [Path("/usr/share/doc/octave/octave.pdf"), Path("/usr/share/doc/gnuplot/gnuplot.pdf")]
HINT = "apt-get install octave-doc gnuplot-doc"
TARGETS = {"bookmarks": 0.95, "headings": 0.8}


def stored(path: Path) -> tuple[Structure, list[Record], float]:
    """The structure ingest stores for a PDF (see pipeline.Ingestor.documents), its records, and
    the seconds they took. Parts are parsed here one after another."""
    started = time.perf_counter()
    reader = reader_for(path)
    parts = reader.plan(path, path.stat().st_size)
    builder = OutlineBuilder(reader.outline(path))
    records = []
    for record in reader.records(path, (reader.parse(part) for part in parts), lambda warning: None):
        builder.see_record(record.section, record.page, record.label)
        records.append(record)
    pages = reader.pages(parts) or max((r.page or 0 for r in records), default=1)
    return builder.build(pages), records, time.perf_counter() - started


def outline_json(path: Path, structure: Structure) -> dict:
    """The shape of `docstack outline DOC --json`."""
    return {"document": str(path), "pages": structure.pages,
            "sections": [{"title": s.title, "level": s.level, "page": s.page,
                          "page_label": structure.label(s.page), "end_page": s.end_page}
                         for s in structure.sections]}


def bookmarks(path: Path) -> list[tuple[str, int, int]]:
    """The PDF's bookmarks as pypdf reads them: (title, 1-based page, level), in document order."""
    import pypdf

    reader = pypdf.PdfReader(str(path))
    found: list[tuple[str, int, int]] = []

    def walk(items: list, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            page = reader.get_destination_page_number(item)
            if item.title and page is not None and page >= 0:
                found.append((item.title, page + 1, level))

    walk(reader.outline, 1)
    return found


def without_bookmarks(path: Path, folder: Path) -> Path:
    """A copy of the PDF with no outline (bookmarks), written into `folder`."""
    import pypdf

    copy = folder / f"{path.stem}-no-bookmarks.pdf"
    writer = pypdf.PdfWriter()
    writer.append(str(path), import_outline=False)
    writer.write(str(copy))
    return copy


def score(sections: list[dict], reference: list[tuple[str, int, int]]) -> dict:
    """Precision, recall and F1 of (title key, page) pairs, each reference pair matched once;
    and `same_level`, the share of the matched sections at their bookmark's level."""
    found = Counter((title_key(s["title"]), s["page"]) for s in sections)
    wanted = Counter((title_key(title), page) for title, page, _ in reference)
    hits = sum((found & wanted).values())
    precision = hits / max(1, sum(found.values()))
    recall = hits / max(1, sum(wanted.values()))
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    levels: dict[tuple[str, int], list[int]] = {}
    for title, page, level in reference:
        levels.setdefault((title_key(title), page), []).append(level)
    same = 0
    for s in sections:
        options = levels.get((title_key(s["title"]), s["page"]))
        if options and s["level"] in options:
            options.remove(s["level"])
            same += 1
    return {"sections": sum(found.values()), "bookmarks": sum(wanted.values()), "matched": hits,
            "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
            "same_level": round(same / max(1, hits), 3)}


def located(structure: Structure, records: list[Record]) -> float:
    """The share of sections whose first record begins with their own title (after a page number
    or running header, which go with the section below them)."""
    first: dict[str, Record] = {}
    for record in records:
        first.setdefault(record.section or "", record)
    hits = 0
    for section in structure.sections:
        record = first.get(section.path)
        hits += bool(record) and _begins_with(record.text.splitlines(), title_key(section.title))
    return round(hits / max(1, len(structure.sections)), 3)


def _begins_with(lines: list[str], key: str) -> bool:
    """The title on the first line or the second, over up to three lines, or run into its
    paragraph ("Png If gnuplot was configured...")."""
    for start in (0, 1):
        if lines[start:] and title_key(lines[start]).startswith(key):
            return True
        if any(title_key(" ".join(lines[start:start + n])) == key for n in (2, 3)):
            return True
    return False


def bench_pdf(path: Path, folder: Path) -> dict:
    reference = bookmarks(path)
    structure, records, seconds = stored(path)
    result = {"file": path.name, "pages": structure.pages,
              "with_bookmarks": {"source": structure.source, **score(outline_json(path, structure)["sections"],
                                                                     reference),
                                 "located": located(structure, records), "seconds": round(seconds, 1)}}
    copy = without_bookmarks(path, folder)
    detected, _, seconds = stored(copy)
    result["headings_only"] = {"source": detected.source, **score(outline_json(copy, detected)["sections"],
                                                                  reference),
                               "seconds": round(seconds, 1)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdf", type=Path, nargs="+", default=PDFS)
    parser.add_argument("--show", type=int, default=0, help="print the first N detected sections of each copy")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.pdf:
            if not path.is_file():
                results.append(f"{path} not found, skipped: {HINT}")
                continue
            results.append(bench_pdf(path, Path(tmp)))
            if args.show:
                detected, _, _ = stored(without_bookmarks(path, Path(tmp)))
                for s in detected.sections[: args.show]:
                    print(f"{s.page:5} {'  ' * (s.level - 1)}{s.title}", file=sys.stderr)
    met = {key: all(r[field]["f1"] >= target for r in results if isinstance(r, dict))
           for key, field, target in (("bookmarks", "with_bookmarks", TARGETS["bookmarks"]),
                                      ("headings", "headings_only", TARGETS["headings"]))}
    print(json.dumps({"pdfs": results, "targets": TARGETS, "met": met}, indent=2))


if __name__ == "__main__":
    main()
