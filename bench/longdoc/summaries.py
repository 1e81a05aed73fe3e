"""`docstack summarize --section` on 20-page sections of the Octave manual through the real
embedded model: time, and how many summary sentences the pages they cite support.

    .venv/bin/python bench/longdoc/summaries.py [--section "4 Numeric Data Types" --section "30 Geometry"]

Starts the embedded stack (`docstack up --no-ui`, Qwen2.5 0.5B in llama.cpp; DOCSTACK_MODEL_ALIAS
picks another) on the benchmark's ports unless it runs there already, and stops it if it started
it. Before each timed run the collection's cached job units are cleared, so the model really reads
the section (a rerun would otherwise make no model call: jobs.py measures that). Time is the CLI's
wall time (`docstack summarize octave.pdf --section TITLE --json`: process start, embedder load,
map over packed pages, reduce, attribution); the model server's CPU seconds are read from /proc.

Two checks of each sentence against the pages it cites:
- docstack's own `supported` (docstack.rag.cite.attribute): the sentence is attributed to the
  evidence it was written from when one passage holds all its numbers and >= 60% of its content
  words (words of 3+ letters, stop words out, compared by their first five letters), else when its
  embedding is within cosine 0.35 of a passage. After a reduce the evidence is the partial
  summaries (model text carrying their pages), not the pages themselves.
- a stricter check of this benchmark's own: the sentence's content words (3+ letters, stop words
  out, whole words with only a plural or -ed/-ing ending taken off) against the PDF text of the
  pages it cites; supported when it cites a page, every number in it is on those pages and >= 80%
  of its content words are. The same rule over all the section's pages says whether a sentence
  that fails is merely cited to the wrong page or is not in the section at all.
A hand-check file, results/summary-handcheck.md, lists sentences with the text of their cited
pages (the lines sharing the most words with the sentence first) for a person to judge."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import OCTAVE_PDF, RESULTS, Skip, Stack, Watch, clear_cached_units, cli, log, model_cpu_seconds, need  # noqa: E402

COLLECTION = "octave"
SECTIONS = ["4 Numeric Data Types", "30 Geometry"]
STRICT_SHARE = 0.8
HANDCHECK = 10
_WORD = re.compile(r"[^\W\d_]{3,}")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def stem(word: str) -> str:
    word = word.lower()
    for ending in ("ies", "es", "ing", "ed", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)] + ("y" if ending == "ies" else "")
    return word


def content(text: str) -> set[str]:
    from docstack.index.keywords import STOPWORDS

    return {stem(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS}


def numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(text))


def strict(sentence: str, pages_text: str) -> tuple[bool, float]:
    words, have = content(sentence), content(pages_text)
    share = len(words & have) / len(words) if words else 1.0
    return bool(pages_text) and numbers(sentence) <= numbers(pages_text) and share >= STRICT_SHARE, round(share, 2)


def summarize(title: str, page_text: dict[int, str]) -> tuple[dict, list[dict]]:
    clear_cached_units(COLLECTION)
    cpu = model_cpu_seconds()
    with Watch() as watch:
        result, seconds = cli("summarize", OCTAVE_PDF.name, "-c", COLLECTION, "--section", title, timeout=1800)
    cpu_after = model_cpu_seconds()
    first, last = result["scope"]["pages"]
    section_text = "\n".join(page_text[p] for p in range(first, last + 1))
    checked = []
    for s in result["sentences"]:
        cited = "\n".join(page_text.get(p, "") for p in s["pages"])
        ok, share = strict(s["text"], cited)
        anywhere, _ = strict(s["text"], section_text)
        checked.append({**s, "strict": ok, "word_share": share, "in_section": anywhere})
    n = len(checked)
    row = {"section": title, "pdf_pages": f"{first}-{last}",
           "page_count": last - first + 1, "wall_seconds": round(seconds, 1),
           "model_cpu_seconds": round(cpu_after - cpu, 1) if cpu is not None and cpu_after is not None else None,
           "units": result["units"], "model_calls": result["model_calls"], "sentences": n,
           "supported_docstack": round(sum(s["supported"] for s in checked) / n, 3) if n else None,
           "supported_strict": round(sum(s["strict"] for s in checked) / n, 3) if n else None,
           "in_section_strict": round(sum(s["in_section"] for s in checked) / n, 3) if n else None,
           "cites_a_page": round(sum(bool(s["pages"]) for s in checked) / n, 3) if n else None,
           "summary": result["summary"], "others_during": watch.report}
    return row, checked


def handcheck(samples: list[tuple[str, dict]], page_text: dict[int, str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "summary-handcheck.md"
    out = ["# Summary sentences to check by hand",
           "",
           "Each sentence of the summaries, with docstack's verdict (`supported`), this benchmark's strict "
           "check (content words on the cited pages) and the text of the pages it cites: the lines that "
           "share the most words with the sentence first, then the whole page. Mark each: supported / "
           "partly / not supported by the cited pages.", ""]
    for n, (title, s) in enumerate(samples, 1):
        words = content(s["text"])
        out += [f"## {n}. ({title}) {s['text']}", "",
                f"- cites PDF pages {s['pages']} (printed {s['page_labels']}); docstack supported: {s['supported']}; "
                f"strict: {s['strict']} (word share {s['word_share']}); in the section at all: {s['in_section']}",
                "- your verdict: ", ""]
        for page in s["pages"]:
            lines = page_text.get(page, "").splitlines()
            best = sorted(lines, key=lambda line: -len(words & content(line)))[:3]
            out += [f"### PDF page {page}: closest lines", "", *[f"> {line}" for line in best], "",
                    "<details><summary>whole page</summary>", "", "```", *lines, "```", "</details>", ""]
        if not s["pages"]:
            out += ["(no page cited)", ""]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--section", action="append", help="a section title (repeat); default: "
                        + "; ".join(SECTIONS))
    args = parser.parse_args()
    sections = args.section or SECTIONS
    try:
        need(OCTAVE_PDF)
        common.ingest([OCTAVE_PDF], COLLECTION)
        from common import pdf_lines as page_lines

        page_text = {n: "\n".join(lines) for n, lines in enumerate(page_lines(OCTAVE_PDF), start=1)}
        rows, samples = [], []
        with Stack():
            for title in sections:
                log(f"summaries: {title}...")
                started = time.time()
                row, checked = summarize(title, page_text)
                rows.append(row)
                samples += [(title, s) for s in checked]
                log(f"  {row['wall_seconds']}s, {row['sentences']} sentences ({time.time() - started:.0f}s)")
        path = handcheck(samples[: max(HANDCHECK, len(samples))], page_text)
    except Skip as exc:
        common.emit("summaries", {"skipped": str(exc)})
        return
    sentences = len(samples)
    common.emit("summaries", {
        "sections": rows,
        "all_sentences": sentences,
        "supported_docstack": round(sum(s["supported"] for _, s in samples) / sentences, 3) if sentences else None,
        "supported_strict": round(sum(s["strict"] for _, s in samples) / sentences, 3) if sentences else None,
        "handcheck_file": str(path), "targets": {"seconds_per_20_pages": "<= 180", "supported": ">= 0.90"},
        "model": os.environ.get("DOCSTACK_MODEL_ALIAS", "qwen2.5-0.5b-instruct"), "machine": common.machine()})


if __name__ == "__main__":
    main()
