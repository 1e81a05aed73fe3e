"""What operations cost a request: `DocStack.search` with OpenTelemetry off and on (exporting over
OTLP/HTTP to a local receiver), a span on its own, and one request audit line.

    .venv/bin/python bench/bench_telemetry.py [--searches 200] [--rounds 5]

Searches run over the shipped sample documents, in rounds that alternate off and on (so a change
of load on the machine hits both alike); it prints the median wall time per search of each and
this process's CPU time per search (the exporter's threads and a flush per round included: the
steadier figure on a shared machine), their ratios and differences, then the cost of one span
and of one audit line (written under its cross-process lock). The load average is printed too:
the numbers mean little without it. One core for FAISS and BLAS, as in bench_search.py: with two
OpenMP threads on a busy two-core machine a search's time swung from 1 to 16 ms between runs,
telemetry or not."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # FAISS and BLAS read this at import

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docstack import DocStack, Principal, Settings, telemetry  # noqa: E402
from docstack.access.audit import RequestAudit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["How do I start the stack?", "Which models can answer?", "What does the safety shield block?",
           "Where are collections stored?", "How are citations made?"]


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every export and answers 200, as a collector does."""

    received = 0

    def do_POST(self):  # noqa: N802
        Sink.received += len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def searches(ds: DocStack, count: int, unique: bool) -> list[float]:
    took = []
    for i in range(count):
        # Unique questions are embedded each time; repeated ones come from the embedder's cache, so
        # what is left is the index search itself, where telemetry weighs the most.
        query = f"{QUERIES[i % len(QUERIES)]} ({i})" if unique else QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        ds.search(query, collection="samples")
        took.append(time.perf_counter() - started)
    return took


def compare(ds: DocStack, endpoint: str, count: int, rounds: int, unique: bool) -> None:
    """Rounds alternate off and on, and which goes first, so a change of load hits both alike."""
    each = max(1, count // rounds)
    took: dict[str, list[float]] = {"off": [], "on": []}
    cpu = {"off": 0.0, "on": 0.0}  # this process's CPU time, the exporter's threads included
    for round_ in range(rounds):
        for state in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
            telemetry.configure(endpoint if state == "on" else None)
            started = time.process_time()
            took[state] += searches(ds, each, unique)
            telemetry.flush()  # the export's cost belongs to the searches that made it
            cpu[state] += time.process_time() - started
    wall = {state: statistics.median(values) for state, values in took.items()}
    per = {state: cpu[state] / len(took[state]) for state in cpu}
    kind = "new question each time" if unique else "repeated questions (embedding cached)"
    print(f"{len(took['off'])} searches each way, {kind}:")
    for state in ("off", "on"):
        print(f"  telemetry {state:<3}: median {wall[state] * 1e3:7.2f} ms wall, {per[state] * 1e3:7.2f} ms CPU")
    print(f"  on/off: {wall['on'] / wall['off']:.3f}x wall ({(wall['on'] - wall['off']) * 1e3:+.3f} ms), "
          f"{per['on'] / per['off']:.3f}x CPU ({(per['on'] - per['off']) * 1e3:+.3f} ms) per search")


def one_span() -> None:
    with telemetry.span("bench", **{"docstack.k": 5}):
        pass


def per_call(action, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        action()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as home:
        ds = DocStack(Settings(home=Path(home), safety=False))
        ds.ingest([ROOT / "docstack" / "samples"], collection="samples")
        searches(ds, 20, unique=False)  # warm: the query encoder, the index's caches
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        compare(ds, endpoint, args.searches, args.rounds, unique=False)
        compare(ds, endpoint, args.searches, args.rounds, unique=True)
        telemetry.configure(endpoint)
        span_on = per_call(one_span, 2000)
        telemetry.configure(None)
        span_off = per_call(one_span, 20000)
        audit = RequestAudit(Path(home) / "logs")
        alice = Principal("alice", frozenset({"hr"}))
        line = per_call(lambda: audit.record(alice, "search", "samples", "a question", [1, 2, 3], seconds=0.01), 2000)
    server.shutdown()
    print(f"exported {Sink.received / 1024:.0f} KiB; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"one span: {span_off * 1e9:.0f} ns off, {span_on * 1e6:.1f} us on")
    print(f"one audit line (locked append): {line * 1e6:.1f} us")


if __name__ == "__main__":
    main()
