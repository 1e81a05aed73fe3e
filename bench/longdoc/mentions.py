"""`docstack mentions` against the printed indexes of the Octave manual, and its latency on the
PostgreSQL manual.

    .venv/bin/python bench/longdoc/mentions.py [--sample 200] [--cli-sample 5] [--seed 15]

Answer key: the Octave manual's own Function Index (1,512 entries) and Concept Index (483), read
from the PDF's text (PDFium, docstack.ingest.readers.pdf.page_lines) on the pages its outline
(`docstack outline --json`) gives those indexes, as (term, [printed pages]); an entry split over
two lines is joined. Each term goes through `DocStack.mentions` (what `docstack mentions TERM
--document octave.pdf --json` prints) in one process; mentions on the index pages themselves are
set aside. An index pair (term, printed page) is found when a returned mention carries that
`page_label`; a term is found when one of its pairs is. "Pages returned" is the number of distinct
pages a term's mentions name.

Reported for both indexes: the exact mentions of the term as printed (what `count` counts); for
the Concept Index, whose entries are concepts rather than phrases ("bugs, reporting", "case
statement" for a page on `switch`), also what the command returns by default (exact plus up to
10 passages marked "related"), the term with an inverted entry ("reporting bugs") added, and, as
the ranked comparison, the top 5 pages of `docstack search` (hybrid) for the term.

Latency: a seeded sample of top-level terms from the PostgreSQL manual's bookindex.html, through
`DocStack.mentions` over the whole collection (1,169 HTML files) with the default 10 related
passages and with none (exact only), timed one at a time after a warm-up; plus a few CLI runs, whose
wall time includes starting Python and loading the embedder. The HTML folder is ingested into
its own collection first (its ingest time is reported; a rerun finds it unchanged and reports
the earlier time kept in results/). The same sample gives a by-file recall: a term is found
when a mention comes from a file the index links it to."""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import OCTAVE_PDF, POSTGRES_HTML, RESULTS, Skip, cli, log, median, need, percentile  # noqa: E402

OCTAVE = "octave"
POSTGRES = "postgres"
TOP = 5  # the ranked comparison: pages of the best hits

_ENTRY = re.compile(r"^(?P<term>.*?)\s*(?:\.\s*){2,}\s*(?P<pages>[0-9ivxlc]+(?:\s*,\s*[0-9ivxlc]+)*)$")
_FURNITURE = re.compile(r"[A-Z]|\d+|\d+ GNU Octave \(version [\d.]+\)|(?:Concept|Function) Index(?: \d+)?")


def index_entries(outline: dict, title: str) -> tuple[list[tuple[str, list[str]]], set[int]]:
    """(term, [printed pages]) of the index titled `title`, and the PDF pages it covers."""
    from common import pdf_lines as page_lines

    section = next(s for s in outline["sections"] if s["title"] == title)
    pages = range(section["page"], section["end_page"] + 1)
    entries: list[tuple[str, list[str]]] = []
    pending = ""
    for lines in page_lines(OCTAVE_PDF, section["page"] - 1, section["end_page"]):
        for line in lines:
            match = _ENTRY.match(line)
            if match:
                term = f"{pending} {match['term']}".strip()
                entries.append((term, [p.strip() for p in match["pages"].split(",")]))
                pending = ""
            elif not _FURNITURE.fullmatch(line):
                pending = f"{pending} {line}".strip()  # the first line of an entry that wraps
    return entries, set(pages)


def inverted(term: str) -> str | None:
    """"bugs, reporting" as the text would say it: "reporting bugs"."""
    head, comma, rest = term.partition(",")
    return f"{rest.strip()} {head.strip()}" if comma and rest.strip() else None


def score(rows: list[dict], key: str) -> dict:
    pairs = sum(len(r["labels"]) for r in rows)
    found = sum(len(set(r["labels"]) & set(r[key])) for r in rows)
    terms = sum(bool(set(r["labels"]) & set(r[key])) for r in rows)
    sizes = [len(set(r[key])) for r in rows]
    return {"pair_recall": round(found / pairs, 3), "term_recall": round(terms / len(rows), 3),
            "median_pages": median(sizes), "mean_pages": round(sum(sizes) / len(sizes), 1)}


def octave(ds) -> dict:
    need(OCTAVE_PDF)
    report = common.ingest([OCTAVE_PDF], OCTAVE)
    outline, _ = cli("outline", OCTAVE_PDF.name, "-c", OCTAVE)
    labels = _labels(ds)
    source = ds.documents(OCTAVE)[0].source
    from docstack.index.base import Filters

    result = {"document": f"{OCTAVE_PDF} ({outline['pages']} pages)", "ingest_seconds": report["wall_seconds"]}
    missed = {}
    for title in ("Function Index", "Concept Index"):
        entries, index_pages = index_entries(outline, title)
        rows, seconds = [], []
        concept = title == "Concept Index"

        def pages_of(term: str, related: int) -> tuple[list[str], list[str]]:
            started = time.perf_counter()
            found = ds.mentions(term, OCTAVE_PDF.name, OCTAVE, related=related)
            seconds.append(time.perf_counter() - started)
            kept = [m for m in found["mentions"] if m["page"] not in index_pages]
            return ([m["page_label"] for m in kept if m["match"] == "exact"],
                    [m["page_label"] for m in kept if m["match"] == "related"])

        for term, printed in entries:
            row = {"term": term, "labels": printed}
            row["exact"], related = pages_of(term, 10 if concept else 0)
            if concept:
                row["default"] = row["exact"] + related
                other = inverted(term)
                row["exact_or_inverted"] = row["exact"] + (pages_of(other, 0)[0] if other else [])
                hits = ds.search(term, OCTAVE, k=10, filters=Filters(source=source))
                pages = [labels[h.page - 1] for h in hits if h.page and h.page not in index_pages]
                row[f"search_top{TOP}"] = list(dict.fromkeys(pages))[:TOP]
            rows.append(row)
        scores = {"entries": len(entries), "pairs": sum(len(p) for _, p in entries),
                  "exact": score(rows, "exact"),
                  "ms_per_term_p50": round(percentile(seconds, 50) * 1000, 1)}
        if concept:
            scores["default_exact_plus_related"] = score(rows, "default")
            scores["exact_or_inverted"] = score(rows, "exact_or_inverted")
            scores[f"search_top{TOP}_ranked"] = score(rows, f"search_top{TOP}")
        result[title] = scores
        missed[title] = [{"term": r["term"], "printed": r["labels"], "exact_pages": sorted(set(r["exact"]))[:12]}
                         for r in rows if not set(r["labels"]) <= set(r["exact"])]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mentions-missed.json").write_text(json.dumps(missed, indent=1, ensure_ascii=False) + "\n")
    return result


def _labels(ds) -> list[str]:
    """The Octave PDF's printed page labels, index 0 = PDF page 1 (search hits carry PDF pages)."""
    from docstack.ingest.readers.pdf import PdfReader

    outline = PdfReader().outline(OCTAVE_PDF)
    return outline.page_labels if outline and outline.page_labels else [str(n) for n in range(1, 2000)]


def bookindex_terms() -> list[tuple[str, set[str]]]:
    """Top-level terms of PostgreSQL's bookindex.html with the files they link to."""
    text = (POSTGRES_HTML / "bookindex.html").read_text(encoding="utf-8", errors="replace")
    terms = []
    for entry in re.finditer(r'<dt id="ientry-[^"]*">(.*?)</dt>', text, re.S):
        raw, _, links = entry.group(1).partition("<a ")
        term = " ".join(html.unescape(re.sub(r"<[^>]+>", "", raw)).split()).rstrip(",").strip()
        files = set(re.findall(r'href="([^"#]+)', links))
        if len(term) >= 3:
            terms.append((term, files))
    return terms


def postgres(ds, sample: int, cli_sample: int, seed: int) -> dict:
    need(POSTGRES_HTML)
    kept = RESULTS / "ingest-postgres.json"
    with common.Watch() as ingesting:
        report = common.ingest([POSTGRES_HTML], POSTGRES)
    if report["chunks"]:  # ingested now: keep its time for the runs that find it unchanged
        RESULTS.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps({**report, "others_during": ingesting.report}) + "\n")
    first = json.loads(kept.read_text()) if kept.exists() else report
    stats = ds.collections()[POSTGRES]
    terms = bookindex_terms()
    chosen = random.Random(seed).sample(terms, min(sample, len(terms)))
    ds.mentions("warm up", None, POSTGRES)  # the embedder and the index's first read
    timings: dict[int, list[float]] = {10: [], 0: []}
    found = linked = 0
    counts = []
    with common.Watch() as watch:
        for term, files in chosen:
            for related in (10, 0):
                started = time.perf_counter()
                result = ds.mentions(term, None, POSTGRES, related=related)
                timings[related].append(time.perf_counter() - started)
            counts.append(result["count"])
            if files:
                linked += 1
                sources = {Path(m["source"]).name for m in result["mentions"]}
                found += bool(sources & files)
    slowest = sorted(zip(timings[10], [t for t, _ in chosen]), reverse=True)[:3]
    cli_runs = [cli("mentions", term, "-c", POSTGRES)[1] for term, _ in chosen[:cli_sample]]
    return {"collection": f"{POSTGRES_HTML} ({stats.documents} files, {stats.chunks} chunks)",
            "ingest_seconds": first["seconds"], "ingest_wall_seconds": first.get("wall_seconds"),
            "ingest_others_during": first.get("others_during"), "others_during_timing": watch.report,
            "terms": len(chosen), "mentions_per_term_median": median(counts), "mentions_per_term_max": max(counts),
            "ms_default_p50": round(percentile(timings[10], 50) * 1000, 1),
            "ms_default_p95": round(percentile(timings[10], 95) * 1000, 1),
            "ms_exact_only_p50": round(percentile(timings[0], 50) * 1000, 1),
            "ms_exact_only_p95": round(percentile(timings[0], 95) * 1000, 1),
            "slowest_default": [f"{term!r} {s * 1000:.0f} ms" for s, term in slowest],
            "cli_wall_seconds_median": round(median(cli_runs), 2) if cli_runs else None,
            "file_recall": round(found / linked, 3) if linked else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=200, help="PostgreSQL index terms timed")
    parser.add_argument("--cli-sample", type=int, default=5, help="of those, run through the CLI too")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    from docstack import DocStack

    ds = DocStack()
    result = {}
    for name, run in (("octave", lambda: octave(ds)),
                      ("postgres", lambda: postgres(ds, args.sample, args.cli_sample, args.seed))):
        try:
            result[name] = run()
        except Skip as exc:
            result[name] = {"skipped": str(exc)}
        log(f"{name}: done")
    result["targets"] = {"function_index_recall": ">= 0.99", "concept_index_recall": ">= 0.85",
                         "concept_median_pages": "<= 5", "postgres_p95_ms": "<= 300"}
    result["machine"] = common.machine()
    common.emit("mentions", result)


if __name__ == "__main__":
    main()
