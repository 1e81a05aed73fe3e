"""Spine benchmark: ingest speed on a generated corpus and `ask` latency on the embedded profile.

    .venv/bin/python bench/bench_spine.py [--pages 200] [--questions 5] [--no-ask]

Prints one JSON object. Questions are distinct so llama.cpp's prompt cache does not flatter."""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docstack import DocStack, Settings  # noqa: E402
from docstack.stack.models import QWEN_0_5B, ensure_gguf  # noqa: E402
from tests.pdfs import write_pdf  # noqa: E402

TOPICS = ["pump", "valve", "boiler", "turbine", "sensor", "filter", "compressor", "generator"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_corpus(root: Path, pages: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    words = "the a unit must be checked daily by staff and logged in the register before each shift".split()

    def paragraph(i: int) -> str:
        topic = TOPICS[i % len(TOPICS)]
        return f"The {topic} number {i} is serviced every {rng.randint(2, 90)} days. " + " ".join(
            rng.choice(words) for _ in range(120)) + "."

    per_pdf = 50
    for n in range(pages // per_pdf):
        write_pdf(root / f"manual-{n}.pdf", [paragraph(n * per_pdf + p) for p in range(per_pdf)])
    for n in range(pages // 10):
        (root / f"note-{n}.md").write_text(f"# Note {n}\n\n" + "\n\n".join(paragraph(n * 3 + j) for j in range(3)))


def bench_ingest(ds: DocStack, corpus: Path) -> dict:
    ds.embedder.load()  # loading torch and the model is start-up, not ingest
    started = time.perf_counter()
    report = ds.ingest([corpus], collection="bench")
    seconds = time.perf_counter() - started
    return {"files": report.files, "pages": report.pages, "chunks": report.chunks,
            "seconds": round(seconds, 2), "pages_per_s": round(report.pages / seconds, 1),
            "chunks_per_s": round(report.chunks / seconds, 1)}


def bench_ask(ds: DocStack, questions: int) -> dict:
    firsts, totals = [], []
    for i in range(questions):
        topic = TOPICS[i % len(TOPICS)]
        answer = ds.ask(f"How often is the {topic} number {i * 7 + 3} serviced?", collection="bench")
        firsts.append(answer.first_token_seconds or answer.seconds)
        totals.append(answer.seconds)
    return {"questions": questions, "first_token_p50_s": round(statistics.median(firsts), 3),
            "total_p50_s": round(statistics.median(totals), 3), "total_max_s": round(max(totals), 3),
            "model": ds.settings.model_id}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--no-ask", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.pages)
        settings = Settings(home=Path(tmp) / "home", stack_port=free_port(), model_port=free_port())
        ds = DocStack(settings)
        result = {"ingest": bench_ingest(ds, corpus)}
        if not args.no_ask:
            settings.gguf = ensure_gguf(QWEN_0_5B, Path.home() / ".docstack" / "models")
            ds.up(with_ui=False)
            try:
                result["ask"] = bench_ask(ds, args.questions)
            finally:
                ds.down()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
