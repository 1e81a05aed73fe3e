"""Safety shields' cost per ask on the embedded profile, with and without shields in one run.

    .venv/bin/python bench/bench_safety.py [--questions 8]

Each question is asked once with shields and once without, alternating which goes first (llama.cpp's
prompt cache favours the second). Reports the time spent inside the shields per ask (input check,
context screen, output filter), the end-to-end medians with and without, the paired difference,
and the first visible text (the output filter holds text until a sentence ends). Prints JSON."""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docstack.safety import guard as guard_module  # noqa: E402
from docstack.stack.models import QWEN_0_5B, ensure_gguf  # noqa: E402

from docstack import DocStack, Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "Does docstack need the internet?", "Which language model answers in the embedded profile?",
    "Where are vectors stored?", "What happens when the documents do not contain the answer?",
    "How do I start the stack?", "Which port does the web UI use?", "How large are the chunks?",
    "How do I add my own documents?", "Where is the data directory?", "How do I stop the stack?",
]

spent: list[float] = []


def timed(fn):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)
    return wrapper


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=8)
    args = parser.parse_args()
    # Time every shield call made inside an ask.
    guard_module.Guard.check_input = timed(guard_module.Guard.check_input)
    guard_module.Guard.screen = timed(guard_module.Guard.screen)
    guard_module.OutputFilter._check = timed(guard_module.OutputFilter._check)
    with tempfile.TemporaryDirectory() as tmp:
        base = dict(home=Path(tmp) / "home", stack_port=free_port(), model_port=free_port(),
                    gguf=ensure_gguf(QWEN_0_5B, Path.home() / ".docstack" / "models"))
        shielded = DocStack(Settings(**base))
        bare = DocStack(Settings(**base, safety=False), embedder=shielded.embedder)
        shielded.ingest([ROOT / "docstack" / "samples"], collection="samples")
        shielded.up(with_ui=False)
        try:
            shielded.shields.warm()
            shielded.shields.pii.names_enabled  # wait for spaCy: start-up, not per-ask cost
            shielded.ask("warm up: what is docstack?", collection="samples")
            rows = []
            for i, question in enumerate(QUESTIONS[: args.questions]):
                order = [(True, shielded), (False, bare)] if i % 2 == 0 else [(False, bare), (True, shielded)]
                row = {}
                for with_shields, ds in order:
                    spent.clear()
                    answer = ds.ask(question, collection="samples")
                    row["with" if with_shields else "without"] = {
                        "seconds": answer.seconds, "first": answer.first_token_seconds or answer.seconds,
                        "shield_ms": sum(spent) * 1000 if with_shields else 0.0, "redactions": answer.safety.redactions}
                rows.append(row)
        finally:
            shielded.down()
    med = statistics.median
    result = {
        "questions": len(rows),
        "shield_ms_per_ask_median": round(med(r["with"]["shield_ms"] for r in rows), 1),
        "shield_ms_per_ask_max": round(max(r["with"]["shield_ms"] for r in rows), 1),
        "with_shields_s_median": round(med(r["with"]["seconds"] for r in rows), 3),
        "without_shields_s_median": round(med(r["without"]["seconds"] for r in rows), 3),
        "paired_difference_ms_median": round(med((r["with"]["seconds"] - r["without"]["seconds"]) * 1000 for r in rows), 1),
        "first_text_with_s_median": round(med(r["with"]["first"] for r in rows), 3),
        "first_text_without_s_median": round(med(r["without"]["first"] for r in rows), 3),
        "redactions": sum(r["with"]["redactions"] for r in rows),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
