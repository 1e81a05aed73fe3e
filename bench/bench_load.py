"""Load on the embedded profile (issue 16): many users asking at once, and many searches at once,
against the real llama.cpp Qwen2.5-0.5B behind the real Llama Stack server.

Users are threads in one process, each its own principal (`DocStack.as_user`) on one shared
DocStack, as the web app and the API serve them. They ask distinct questions about docstack's
sample documents (so llama.cpp's prompt cache does not flatter), `--stagger` seconds apart so that
the order of asking is defined. Measured for each ask, from the moment the user asked (the queue
wait included): time to first token and to the end, the wait for the model, the model's own time
(`service`: from its turn to the end). Fairness: the model takes one question at a time, so the
order of first tokens is the order of turns; an inversion is a pair answered in the other order
than asked. A lost answer is one that came back without an error but empty. Then `--searches`
searches at once, alone and again while the askers wait.

    .venv/bin/python bench/bench_load.py [--users 20] [--searches 50] [--stagger 0.2]

Prints a table and writes the whole run as JSON under bench/results/ (git-ignored). The default
run took 2 minutes on 2 cores at load average 3 (7.5 at 12), almost all of it the model answering
one question at a time."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docstack import DocStack, Settings  # noqa: E402
from docstack.access.identity import Principal  # noqa: E402
from docstack.console import DocstackError  # noqa: E402
from docstack.stack.models import QWEN_0_5B, ensure_gguf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "docstack" / "samples"
RESULTS = Path(__file__).resolve().parent / "results"
COLLECTION = "samples"
TEAM = "staff"
# Distinct questions the sample documents answer, each with a pattern its answer should match.
QUESTIONS = [
    ("Does docstack need the internet?", r"offline|\bno\b"),
    ("Which language model answers in the embedded profile?", r"qwen"),
    ("Where are vectors stored?", r"faiss"),
    ("Which port does the Llama Stack server listen on?", r"8321"),
    ("Which port does the web UI use?", r"8501"),
    ("How many tokens can a chunk hold at most?", r"200"),
    ("How many tokens do neighbouring chunks overlap?", r"40"),
    ("How many passages does a search return by default?", r"\b5\b|five"),
    ("How many tokens may the model write in an answer?", r"384"),
    ("What is the context window of the embedded model?", r"4096|4,096"),
    ("What is the default data directory?", r"\.docstack"),
    ("How do I back up docstack?", r"cop(y|ies)|down"),
    ("What does each collection folder hold?", r"sqlite|faiss"),
    ("How do I upgrade docstack?", r"make install|pull"),
    ("What happens to an old collection when the embedding model changes?", r"re-?ingest|refuse"),
    ("Where are the logs written?", r"logs"),
    ("How does docstack know that a file did not change since the last ingest?", r"sha-?256|hash"),
    ("How is the assembled GGUF file checked before first use?", r"sha-?256|checksum"),
    ("Which command stops the stack?", r"down"),
    ("Which quantization does the embedded model use?", r"q4|4-bit"),
]
# Searches are distinct (the embedder remembers recent queries), a topic with a different lead each round.
TOPICS = ["backup", "port already in use", "chunk overlap", "embedding model", "upgrade", "FAISS index",
          "troubleshooting logs", "sample documents", "citations", "context window"]
LEADS = [["", "how to", "what about", "help with", "docs on"], ["about", "question on", "where is", "explain",
                                                                 "notes on"]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float | None:
    return round(float(np.percentile(values, p)), 2) if values else None


def ask(user: DocStack, number: int, question: str, expected: str, t0: float) -> dict:
    """One user's question, timed from the moment they asked."""
    row = {"user": user.principal.user, "number": number, "question": question, "asked": time.perf_counter() - t0}
    asked = time.perf_counter()
    try:
        stream = user.stream(question, collection=COLLECTION)
        retrieved = time.perf_counter()
        first = None
        for delta in stream:
            if first is None and delta.strip():
                first = time.perf_counter()
        answer = stream.answer
        done = time.perf_counter()
    except DocstackError as exc:
        return {**row, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the benchmark reports every failure, it does not stop
        return {**row, "error": f"{type(exc).__name__}: {exc}"}
    turn = retrieved + answer.wait_seconds
    return {**row, "first_token": None if first is None else round(first - asked, 2), "total": round(done - asked, 2),
            "wait": round(answer.wait_seconds, 2), "service": round(done - turn, 2),
            "first_at": None if first is None else first - t0, "answer": answer.answer, "abstained": answer.abstained,
            "lost": not answer.answer.strip(), "citations": len(answer.citations), "notices": answer.notices,
            "correct": bool(re.search(expected, answer.answer, re.IGNORECASE))}


def queries(count: int, round_: int) -> list[str]:
    leads = LEADS[round_ % len(LEADS)]
    made = [f"{lead} {topic}".strip() for lead in leads for topic in TOPICS]
    return [made[i % len(made)] + (f" {i // len(made)}" if i >= len(made) else "") for i in range(count)]


def searches(users: list[DocStack], count: int, round_: int) -> dict:
    """`count` distinct searches started together (a barrier), each as one of the users."""
    barrier = threading.Barrier(count)
    texts = queries(count, round_)

    def one(i: int) -> float | str:
        user, query = users[i % len(users)], texts[i]
        barrier.wait()
        started = time.perf_counter()
        try:
            hits = user.search(query, collection=COLLECTION)
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - started if hits else "no hits"

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, range(count)))
    times = [r * 1000 for r in results if isinstance(r, float)]
    return {"searches": count, "errors": [r for r in results if isinstance(r, str)],
            "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "max_ms": percentile(times, 100)}


def inversions(rows: list[dict]) -> int:
    """Pairs answered in the other order than asked (the order of first tokens = the order of turns)."""
    answered = [r["first_at"] for r in sorted(rows, key=lambda r: r["asked"]) if r.get("first_at") is not None]
    return sum(1 for i in range(len(answered)) for j in range(i + 1, len(answered)) if answered[j] < answered[i])


def crowd(ds: DocStack, users: list[DocStack], stagger: float, search_count: int) -> tuple[list[dict], dict]:
    """Every user asks, `stagger` apart; once all have asked, `search_count` searches at once."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(users)) as pool:
        futures = []
        for number, user in enumerate(users):
            question, expected = QUESTIONS[number % len(QUESTIONS)]
            futures.append(pool.submit(ask, user, number, question, expected, t0))
            time.sleep(stagger)
        time.sleep(1.0)  # the askers are queued (or answered): search beside them
        beside = searches(users, search_count, 1) if search_count else {}
        beside["queued_while_searching"] = ds.queue.waiting()
        rows = [f.result() for f in futures]
    return rows, beside


def summary(rows: list[dict], wall: float) -> dict:
    ok = [r for r in rows if "error" not in r]
    firsts = [r["first_token"] for r in ok if r["first_token"] is not None]
    services = [r["service"] for r in ok]
    return {
        "asks": len(rows), "errors": len(rows) - len(ok), "lost": sum(r["lost"] for r in ok),
        "abstained": sum(r["abstained"] for r in ok), "correct": sum(r["correct"] for r in ok),
        "first_token_p50": percentile(firsts, 50), "first_token_p95": percentile(firsts, 95),
        "total_p50": percentile([r["total"] for r in ok], 50), "total_p95": percentile([r["total"] for r in ok], 95),
        "wait_p50": percentile([r["wait"] for r in ok], 50), "wait_max": percentile([r["wait"] for r in ok], 100),
        "service_p50": percentile(services, 50), "service_sum": round(sum(services), 1), "wall": round(wall, 1),
        "model_busy_share": round(sum(services) / wall, 2) if wall else None,
        "fifo_inversions": inversions(ok), "pairs": len(ok) * (len(ok) - 1) // 2,
    }


def table(result: dict) -> str:
    s, alone, beside = result["asks"], result["searches_alone"], result["searches_beside_asks"]
    lines = [
        f"{'measure':<44} value",
        f"{'users asking at once':<44} {s['asks']} (stagger {result['stagger']} s)",
        f"{'errors / lost answers (empty)':<44} {s['errors']} / {s['lost']}",
        f"{'abstained / answer matches the documents':<44} {s['abstained']} / {s['correct']}",
        f"{'first token p50 / p95 (s, from asking)':<44} {s['first_token_p50']} / {s['first_token_p95']}",
        f"{'total p50 / p95 (s, from asking)':<44} {s['total_p50']} / {s['total_p95']}",
        f"{'queue wait p50 / max (s)':<44} {s['wait_p50']} / {s['wait_max']}",
        f"{'model time per answer p50 (s)':<44} {s['service_p50']}",
        f"{'model busy share of the wall time':<44} {s['model_busy_share']} ({s['service_sum']} of {s['wall']} s)",
        f"{'FIFO: pairs answered out of asking order':<44} {s['fifo_inversions']} of {s['pairs']}",
        f"{'searches at once: errors, p50 / p95 ms':<44} {len(alone['errors'])}, {alone['p50_ms']} / {alone['p95_ms']}",
        (f"{'same, beside the queued askers':<44} {len(beside.get('errors', []))}, {beside.get('p50_ms')} / "
         f"{beside.get('p95_ms')} ({beside.get('queued_while_searching')} asks queued)"),
        f"{'load average 1/5/15 at the end':<44} {' '.join(str(x) for x in result['load_after'])}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="users asking at once (default 20)")
    parser.add_argument("--searches", type=int, default=50, help="searches at once (default 50; 0: none)")
    parser.add_argument("--stagger", type=float, default=0.2, help="seconds between two users' questions")
    args = parser.parse_args()
    gguf = ensure_gguf(QWEN_0_5B, Path.home() / ".docstack" / "models")
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        ds = DocStack(Settings(home=home, gguf=gguf, stack_port=free_port(), model_port=free_port()))
        ds.up(with_ui=False)
        try:
            docs = Path(scratch) / "docs"
            shutil.copytree(SAMPLES, docs)
            ds.ingest([docs], collection=COLLECTION)
            ds.grant(COLLECTION, read_teams=[TEAM])
            users = [ds.as_user(Principal(f"user{n:02d}", frozenset({TEAM}))) for n in range(args.users)]
            ds.warm_up()
            users[0].ask("What is docstack?", collection=COLLECTION)  # the first answer loads what answers need
            alone = searches(users, args.searches, 0) if args.searches else {"errors": []}
            started = time.perf_counter()
            rows, beside = crowd(ds, users, args.stagger, args.searches)
            wall = time.perf_counter() - started
        finally:
            ds.down()
    result = {"users": args.users, "stagger": args.stagger, "asks": summary(rows, wall), "searches_alone": alone,
              "searches_beside_asks": beside, "load_before": load_before,
              "load_after": [round(x, 2) for x in os.getloadavg()], "cpus": len(os.sched_getaffinity(0)),
              "answer_slots": ds.settings.answer_slots, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"load-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    for row in rows:
        if "error" in row or row["lost"] or not row["correct"]:
            print("   ", json.dumps({k: row.get(k) for k in ("user", "question", "error", "answer", "abstained")}))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
