"""Parsing workers never outlive the ingest that started them: after kill -9 of a `docstack
ingest`, its fork server and workers used to stay alive for good (about 230 MB each time)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_exit_when_the_ingest_is_killed(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(60):  # many files: the pool is busy parsing when the kill lands
        (corpus / f"note-{i:02}.md").write_text(f"# Note {i}\n\n" + f"Paragraph about pump {i}. " * 400)
    env = {**os.environ, "DOCSTACK_HOME": str(tmp_path / "home")}
    ingest = subprocess.Popen([sys.executable, "-m", "docstack.cli", "ingest", str(corpus), "--json"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, helpers = time.monotonic() + 120, []
    while time.monotonic() < deadline and ingest.poll() is None:
        # the fork server (and the resource tracker) are the ingest's children; workers are the server's
        helpers = [p for c in children(ingest.pid) for p in [c, *children(c)]]
        if len(helpers) >= 3:
            break
        time.sleep(0.1)
    assert len(helpers) >= 3, "the ingest ended before its workers could be seen; make the corpus larger"
    ingest.send_signal(signal.SIGKILL)
    ingest.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in helpers):
        time.sleep(0.2)
    left = [p for p in helpers if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
