"""Ingestion through the local worker processes beside Ray with 1 and with 2 workers, on the same
generated corpus, in one run.

    .venv/bin/python bench/bench_ray_ingest.py [--files 60] [--pages 4] [--repeat 2]

The corpus: `--files` PDFs of `--pages` pages of distinct prose (tests/pdfs.py), each page about
300 words (two chunks). Each set-up ingests it into a fresh home (SQLite) from a fresh process,
with the embedding model loaded first; a Ray set-up starts its own head on 127.0.0.1 with that
many CPUs (tests/ray_server.py). Each process first ingests 4 small warm-up files, so that every
Ray worker has loaded its model and the local fork server has started: `seconds` is ingest alone,
`cold_s` the warm-up (worker start and model load). Each set-up runs `--repeat` times; the
fastest run counts. Prints one JSON
object: files/s, pages/s, chunks/s and each set-up's ratio to the local path."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.pdfs import write_pdf  # noqa: E402
from tests.ray_server import RayHead  # noqa: E402

WORDS = ("pump valve service interval crew manual device parts check pressure filter seal gauge motor "
         "inspect replace report schedule safety shift operator log alarm reset flow tank drain").split()


def corpus(folder: Path, files: int, pages: int) -> list[Path]:
    rng = random.Random(11)
    paths = []
    for f in range(files):
        texts = []
        for p in range(pages):
            sentences = [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(25)]
            texts.append(f"Document {f} page {p + 1}. " + " ".join(sentences))
        paths.append(write_pdf(folder / f"doc-{f:04d}.pdf", texts))
    return paths


def run(folder: Path, warmup: Path, home: Path, ray: str | None) -> dict:
    """One ingest in a fresh process, as a user's `docstack ingest` would run it."""
    code = (
        "import json, time\n"
        "from docstack import DocStack, Settings\n"
        f"ds = DocStack(Settings(home={str(home)!r}, ray_address={ray!r}, safety=False))\n"
        "ds.embedder.load()\n"
        "start = time.perf_counter()\n"
        f"ds.ingest([{str(warmup)!r}], collection='warmup')\n"
        "cold = time.perf_counter() - start\n"
        "start = time.perf_counter()\n"
        f"report = ds.ingest([{str(folder)!r}])\n"
        "print(json.dumps({'report': report.to_json(), 'seconds': time.perf_counter() - start, 'cold_s': cold}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def best(folder: Path, warmup: Path, home: Path, ray: str | None, repeat: int) -> dict:
    """The fastest of `repeat` runs, each into a fresh home: the machine is shared, and a run that
    another process slowed down says nothing about docstack."""
    return min((run(folder, warmup, home.with_name(f"{home.name}-{i}"), ray) for i in range(repeat)),
               key=lambda result: result["seconds"])


def rates(result: dict) -> dict:
    report, seconds = result["report"], result["seconds"]
    assert not report["errors"], report["errors"]
    return {"files": report["files"], "pages": report["pages"], "chunks": report["chunks"],
            "seconds": round(seconds, 1), "cold_s": round(result["cold_s"], 1),
            "files_per_s": round(report["files"] / seconds, 2), "pages_per_s": round(report["pages"] / seconds, 2),
            "chunks_per_s": round(report["chunks"] / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        folder, warm = Path(tmp) / "corpus", Path(tmp) / "warm"
        folder.mkdir()
        warm.mkdir()
        corpus(folder, args.files, args.pages)
        for n in range(4):  # more than the workers: every one of them loads its model here
            write_pdf(warm / f"warm-{n}.pdf", [f"Warm-up page {n} about the pump.", "And its valve."])
        results["local"] = rates(best(folder, warm, Path(tmp) / "home-local", None, args.repeat))
        for cpus in (1, 2):
            head = RayHead(cpus=cpus).start()
            try:
                results[f"ray_{cpus}_worker{'s' if cpus > 1 else ''}"] = rates(
                    best(folder, warm, Path(tmp) / f"home-ray-{cpus}", head.address, args.repeat))
            finally:
                head.stop()
    local = results["local"]["pages_per_s"]
    for name, result in results.items():
        result["vs_local"] = round(result["pages_per_s"] / local, 2)
    print(json.dumps({"files": args.files, "pages_per_file": args.pages, "repeat": args.repeat,
                      "load_average": os.getloadavg()[0], "setups": results}, indent=2))


if __name__ == "__main__":
    main()
