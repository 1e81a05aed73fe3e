"""Chunk size and overlap against retrieval quality, through the evaluation harness.

    .venv/bin/python bench/bench_chunking.py [--dataset ../shared/data/squad-dev] [--sizes 100 150 200 250]
        [--overlaps 0 40] [--mode hybrid]

Each (size, overlap) pair ingests the dataset into a fresh collection and runs `docstack eval
retrieval` on it; prints one JSON row per pair: hit@1, hit@5, MRR, nDCG@10, the number of chunks,
and the tokens that `ask` would pack for its 3 passages (what the 0.5B model must read)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from docstack import DocStack, Settings
from docstack.eval import harness

ROOT = Path(__file__).resolve().parent.parent


def measure(dataset: Path, size: int, overlap: int, mode: str, home: Path) -> dict:
    ds = DocStack(Settings(home=home, chunk_tokens=size, chunk_overlap=overlap, safety=False))
    result = harness.retrieval(ds, dataset, [mode])
    index = ds.library.index(f"eval-{result['dataset']}")
    texts = [text for (text,) in index.db.execute("SELECT text FROM chunks")]  # the SQLite backend's own table
    tokens = statistics.mean(ds.embedder.count_tokens(texts))
    return {"chunk_tokens": size, "overlap": overlap, "chunks": index.stats().chunks,
            **{k: v for k, v in result["results"][mode].items() if k != "p50_ms"},
            "ask_prompt_tokens": round(tokens * ds.settings.ask_k)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "squad-dev")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 150, 200, 250])
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 40])
    parser.add_argument("--mode", default="hybrid")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for overlap in args.overlaps:
                home = Path(tmp) / f"{size}-{overlap}"
                print(json.dumps(measure(args.dataset, size, overlap, args.mode, home)), flush=True)


if __name__ == "__main__":
    main()
