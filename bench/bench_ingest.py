"""Ingestion benchmark on a large real PDF, an unchanged-folder re-run and a large text file.

    .venv/bin/python bench/bench_ingest.py [--pdf PATH ...] [--files 1000] [--text-mb 5]
        [--configs before default static] [--text-config static]

The default PDFs are LaTeX's source2e.pdf (1,221 dense pages of commented source) from Debian's
texlive-latex-base-doc and the PGF/TikZ manual (1,300 pages, mostly prose) from texlive-pictures-doc
(`make bench` installs both). Prints one JSON object: pages/s,
chunks/s and peak RSS of the whole ingest (parse workers included) for each embedding set-up, side
by side in one run, the time to re-run ingest over N unchanged files, and the peak RSS while
ingesting a large text file (with the static model by default: even in bfloat16, MiniLM embeds
about 15,000 tokens a second on two cores, so 50 MB would take most of an hour).

Set-ups: `before` is MiniLM in float32 with batches of 64 (the defaults until bfloat16 came in),
`default` what a user gets now (bfloat16 where the CPU has it, batches of 16), `static` the
static model distilled from MiniLM."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PDF = Path("/usr/share/doc/texlive-doc/latex/base/source2e.pdf")  # dense: LaTeX's commented source
PROSE_PDF = Path("/usr/share/doc/texlive-doc/generic/pgf/pgfmanual.pdf")  # a manual: mostly prose


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CONFIGS = {  # Settings overrides
    "before": {"embedding_model": MINILM, "embed_precision": "float32", "embed_batch": 64},
    "default": {},
    "static": {"embedding_model": "docstack/all-MiniLM-L6-v2-static"},
}


def run_ingest(paths: list[Path], home: Path, config: str = "default") -> tuple[dict, float, float]:
    """Ingest in a fresh process (as a user would); returns its report, wall seconds and peak RSS (MB)."""
    code = (
        "import json, resource, sys, time\n"
        "from docstack import DocStack, Settings\n"
        f"ds = DocStack(Settings(home={str(home)!r}, **{CONFIGS[config]!r}))\n"
        "ds.embedder.load()  # model loading is start-up, not ingest\n"
        "start = time.perf_counter()\n"
        f"report = ds.ingest({[str(p) for p in paths]!r})\n"
        "seconds = time.perf_counter() - start\n"
        "rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
        "          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024\n"
        "print(json.dumps({'report': report.to_json(), 'seconds': seconds, 'rss_mb': rss}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["report"], result["seconds"], result["rss_mb"]


def bench_pdf(pdf: Path, home: Path, config: str) -> dict:
    report, seconds, rss = run_ingest([pdf], home, config)
    return {"config": config, "file": pdf.name, "pages": report["pages"], "chunks": report["chunks"],
            "seconds": round(seconds, 2),
            "pages_per_s": round(report["pages"] / seconds, 1), "chunks_per_s": round(report["chunks"] / seconds, 1),
            "peak_rss_mb": round(rss), "errors": report["errors"]}


def bench_unchanged(n: int, tmp: Path) -> dict:
    folder = tmp / "many"
    folder.mkdir()
    for i in range(n):
        (folder / f"note-{i:04}.md").write_text(f"# Note {i}\n\nShort note number {i} about part {i % 37}.\n")
    home = tmp / "home-many"
    first, first_s, _ = run_ingest([folder], home)
    again, again_s, _ = run_ingest([folder], home)
    return {"files": n, "first_ingest_s": round(first_s, 2), "unchanged_rerun_s": round(again_s, 3),
            "unchanged_reported": again["unchanged"]}


def bench_text(mb: int, tmp: Path, config: str) -> dict:
    path = tmp / "big.txt"
    paragraph = "The pressure relief valve on line {i} must be inspected every {d} days by two technicians."
    with open(path, "w") as fh:
        i = 0
        while fh.tell() < mb * 1_000_000:
            fh.write(" ".join(paragraph.format(i=i + j, d=(i + j) % 90 + 1) for j in range(8)) + "\n\n")
            i += 8
    report, seconds, rss = run_ingest([path], tmp / "home-text", config)
    return {"config": config, "megabytes": mb, "chunks": report["chunks"], "seconds": round(seconds, 1),
            "peak_rss_mb": round(rss)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdf", type=Path, nargs="+", default=[DEFAULT_PDF, PROSE_PDF])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--text-mb", type=int, default=5)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--text-config", choices=list(CONFIGS), default="static")
    args = parser.parse_args()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result["pdf"] = []
        for n, pdf in enumerate(args.pdf):
            if not pdf.is_file():
                result["pdf"].append(f"{pdf} not found: `make bench` installs it, or pass --pdf")
                continue
            runs = [bench_pdf(pdf, tmp / f"home-pdf-{n}-{config}", config) for config in args.configs]
            for run in runs:  # each set-up against the first, measured in this run
                run["speed_vs_" + runs[0]["config"]] = round(run["pages_per_s"] / runs[0]["pages_per_s"], 2)
            result["pdf"] += runs
        if args.files:
            result["unchanged"] = bench_unchanged(args.files, tmp)
        if args.text_mb:
            result["large_text"] = bench_text(args.text_mb, tmp, args.text_config)
    result["machine"] = {"cpus": len(__import__("os").sched_getaffinity(0)),
                         "max_rss_self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
