"""Turns at a busy model server: first come, first served, across threads and processes, and a
ticket left by a killed process does not block anyone."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from docstack.console import DocstackError
from docstack.stack.model_queue import ModelQueue, Waiting
from tests.conftest import ROOT


def test_questions_take_turns_in_the_order_they_came(tmp_path):
    queue = ModelQueue(tmp_path / "queue", slots=1)
    inside, order, most, waits = [], [], [0], {}
    lock = threading.Lock()

    def ask(n: int) -> None:
        reports: list[Waiting] = []
        with queue.turn(reports.append) as waited:
            with lock:
                inside.append(n)
                most[0] = max(most[0], len(inside))
                order.append(n)
            time.sleep(0.3)
            with lock:
                inside.remove(n)
        waits[n] = (waited, reports)

    threads = []
    for n in range(4):
        threads.append(threading.Thread(target=ask, args=(n,)))
        threads[-1].start()
        time.sleep(0.05)  # tickets taken in this order
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3] and most[0] == 1
    assert waits[0][0] < 0.1 and waits[3][0] > 0.6
    ahead = [w.ahead for w in waits[3][1]]
    assert ahead[0] == 3 and ahead[-1] == 1 and ahead == sorted(ahead, reverse=True)
    assert "3 questions ahead of yours" in str(waits[3][1][0])
    assert queue.waiting() == 0 and not list((tmp_path / "queue").iterdir())


def test_two_slots_answer_two_at_once(tmp_path):
    queue = ModelQueue(tmp_path / "queue", slots=2)
    with queue.turn() as first, queue.turn() as second:
        assert first < 0.1 and second < 0.1
        assert queue.waiting() == 2


def test_no_slots_means_no_queue(tmp_path):
    queue = ModelQueue(tmp_path / "queue", slots=0)
    with queue.turn() as a, queue.turn() as b:
        assert a == b == 0.0
    assert not (tmp_path / "queue").exists()


def test_a_killed_process_does_not_hold_up_the_queue(tmp_path):
    folder = tmp_path / "queue"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from docstack.stack.model_queue import ModelQueue\n"
        f"with ModelQueue(Path({str(folder)!r}), 1).turn():\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(600)\n")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        queue = ModelQueue(folder, slots=1)
        assert queue.waiting() == 1
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with queue.turn() as waited:  # its ticket is still on disk, but nobody holds it
            assert waited < 1.0
    finally:
        holder.kill()
    assert not list(folder.iterdir())


def test_a_question_that_waits_too_long_fails_in_one_line(tmp_path):
    queue = ModelQueue(tmp_path / "queue", slots=1, max_wait=0.5)
    with queue.turn():
        failed: list[Exception] = []

        def ask() -> None:
            try:
                with queue.turn():
                    pass
            except DocstackError as exc:
                failed.append(exc)

        t = threading.Thread(target=ask)
        t.start()
        t.join(5)
    assert failed and str(failed[0]).startswith("the model is busy: 1 question still ahead after")
    assert queue.waiting() == 0


def test_the_turn_is_released_when_the_answer_is_abandoned(tmp_path):
    queue = ModelQueue(tmp_path / "queue", slots=1)

    def answer():
        with queue.turn():
            yield "one"
            yield "two"

    deltas = answer()
    assert next(deltas) == "one" and queue.waiting() == 1
    deltas.close()  # a reader that stops early (a closed browser tab)
    assert queue.waiting() == 0
    with pytest.raises(StopIteration):
        next(deltas)
