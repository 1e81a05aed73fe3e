"""Several people asking at once on the embedded profile, before and after the queueing fix,
side by side in one run.

`before`: llama-cpp-python's server as docstack used to start it (its default
`interrupt_requests`: a new request cuts the answer in progress short) and no queue in docstack;
`after`: the server queues (`--interrupt_requests false`) and docstack gives turns in order
(`DOCSTACK_MODEL_SLOTS`, 1 here), showing each question its wait.

For each set-up: single-user latency (sequential asks through the Python API: first token and
total), then N `docstack ask --json` processes started at once beside 6 `docstack search` and a
`docstack ingest` into another collection: each ask's exit code, whether it got an answer, its
wait for a turn and its total time. A single user's request reaches the same server either way;
what the fix adds to it is taking a turn in the queue, timed on its own at the end (uncontended).

    .venv/bin/python bench/bench_concurrency.py [--asks 8] [--sequential 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from docstack import DocStack, Settings
from docstack.stack import profiles
from docstack.stack.model_queue import ModelQueue
from docstack.stack.models import QWEN_0_5B, ensure_gguf

DOCS = {
    "pumps.md": "# Pumps\n\nThe Zephyr-9 pump must be serviced every 42 days by the maintenance crew. "
                "Its spare seals are kept in cabinet 14 of workshop B.",
    "canteen.md": "# Canteen\n\nThe canteen serves lentil soup on Fridays and opens at 11:30. "
                  "Coffee costs 80 cents for staff with a badge.",
    "exits.md": "# Emergency exits\n\nThe emergency exits of Building C are at its north and south ends. "
                "The assembly point is the car park by gate 3.",
    "leave.md": "# Leave\n\nFull-time staff get 27 days of paid leave a year. Requests go to the team lead "
                "at least two weeks ahead.",
    "it.md": "# IT\n\nPasswords expire every 90 days. The help desk is on extension 4455 and answers "
             "from 8:00 to 17:00.",
}
QUESTIONS = [
    "How often must the Zephyr-9 pump be serviced?", "Where are the Zephyr-9's spare seals kept?",
    "What does the canteen serve on Fridays?", "How much does coffee cost for staff?",
    "Where are the emergency exits of Building C?", "How many days of paid leave do full-time staff get?",
    "How often do passwords expire?", "Which extension is the help desk on?",
    "When does the canteen open?", "Where is the assembly point?",
]
SEQUENTIAL = [
    "Who services the Zephyr-9 pump?", "Until when does the help desk answer?",
    "To whom do leave requests go?", "What is the assembly point by?", "What do staff need for cheap coffee?",
]


def start(home: Path, gguf: Path, before: bool) -> DocStack:
    settings = Settings(home=home, gguf=gguf, stack_port=18321, model_port=18322, model_slots=0 if before else 1)
    ds = DocStack(settings)
    ds.up(with_ui=False)
    if before:  # the model server as docstack started it before the fix
        model = profiles.services(settings, with_ui=False)[0]
        at = model.command.index("--interrupt_requests")
        del model.command[at:at + 2]
        ds.operations.services.stop("model")
        ds.operations.services.start(model)
    return ds


def sequential(ds: DocStack, questions: list[str]) -> dict:
    ds.ask("What is the canteen's soup on Fridays?", collection="office")  # warm up: shields, tokenizer
    firsts, totals, answers = [], [], []
    for question in questions:
        answer = ds.ask(question, collection="office")
        firsts.append(answer.first_token_seconds or answer.seconds)
        totals.append(answer.seconds)
        answers.append(("(abstained) " if answer.abstained else "") + answer.answer[:50])
    return {"first_token_p50": round(statistics.median(firsts), 2), "total_p50": round(statistics.median(totals), 2),
            "totals": [round(t, 2) for t in totals], "answers": answers}


def concurrent(ds: DocStack, questions: list[str], env: dict[str, str], other: Path) -> dict:
    cli = [sys.executable, "-m", "docstack.cli"]
    started = time.perf_counter()
    asks = [subprocess.Popen([*cli, "ask", q, "--collection", "office", "--json"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for q in questions]
    searches = [subprocess.Popen([*cli, "search", q, "--collection", "office", "--json"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for q in questions[:6]]
    ingest = subprocess.Popen([*cli, "ingest", str(other), "--collection", "other", "--json"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    for question, proc in zip(questions, asks):
        out, err = proc.communicate(timeout=1800)
        row = {"question": question, "exit": proc.returncode, "wall": round(time.perf_counter() - started, 1)}
        if proc.returncode == 0:
            answer = json.loads(out)
            row.update(answered=bool(answer["answer"].strip()) and not answer["abstained"],
                       abstained=answer["abstained"], wait=answer.get("wait_seconds"), total=answer["seconds"],
                       answer=answer["answer"][:60])
        else:
            row.update(answered=False, error=err.strip().splitlines()[-1][:140] if err.strip() else "")
        rows.append(row)
    others = [p.wait(timeout=1800) for p in [*searches, ingest]]
    return {"answered": sum(r["answered"] for r in rows), "asks": len(rows), "searches_and_ingest_ok": others.count(0),
            "wall_all": round(time.perf_counter() - started, 1), "rows": rows}


def turn_overhead(folder: Path, turns: int = 2000) -> float:
    """Microseconds one uncontended turn in the queue costs (ticket file, lock, rename, unlink)."""
    queue = ModelQueue(folder, slots=1)
    started = time.perf_counter()
    for _ in range(turns):
        with queue.turn():
            pass
    return round((time.perf_counter() - started) / turns * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=8)
    parser.add_argument("--sequential", type=int, default=5)
    args = parser.parse_args()
    gguf = ensure_gguf(QWEN_0_5B, Path.home() / ".docstack" / "models")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        docs, other = root / "docs", root / "other"
        docs.mkdir()
        other.mkdir()
        for name, text in DOCS.items():
            (docs / name).write_text(text + "\n")
            (other / name).write_text(text.replace("#", "# Copy:", 1) + "\n")
        for variant in ("before", "after"):
            home = root / variant
            ds = start(home, gguf, before=variant == "before")
            try:
                ds.ingest([docs], collection="office")
                env = {**os.environ, **ds.settings.to_env()}
                single = sequential(ds, SEQUENTIAL[:args.sequential])
                print(json.dumps({"variant": variant, "single_user": single}), flush=True)
                crowd = concurrent(ds, QUESTIONS[:args.asks], env, other)
                print(json.dumps({"variant": variant, **{k: v for k, v in crowd.items() if k != "rows"}}), flush=True)
                for row in crowd["rows"]:
                    print("   ", json.dumps(row), flush=True)
            finally:
                ds.down()
        print(json.dumps({"queue_turn_us": turn_overhead(root / "queue-bench")}), flush=True)


if __name__ == "__main__":
    main()
