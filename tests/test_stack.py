"""End to end through a real Llama Stack server and a real local model (Qwen2.5-0.5B, llama.cpp)."""

from __future__ import annotations

import re

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from docstack import DocStack, Settings
from docstack.console import DocstackError
from tests.conftest import ROOT, free_port
from tests.pdfs import write_pdf

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, running_stack):
    root = tmp_path_factory.mktemp("docs")
    write_pdf(root / "plant-manual.pdf", [
        "Welcome to the plant manual. This page explains the safety briefing for new staff.",
        "Maintenance schedule. The Zephyr-9 pump must be serviced every 42 days by the maintenance crew.",
        "Emergency exits are located at the north and south ends of Building C.",
    ])
    (root / "canteen.md").write_text("# Canteen\n\n## Menu\n\nThe canteen serves lentil soup on Fridays.\n")
    report = running_stack.ingest([root], collection="plant")
    assert report.files == 2 and not report.errors
    return root


def stack_env(settings) -> dict[str, str]:
    """What points another process (the CLI, the web app) at the running stack and its collections."""
    return {f"DOCSTACK_{key}": str(value) for key, value in
            {"HOME": settings.home, "STACK_PORT": settings.stack_port, "GGUF": settings.gguf,
             "N_CTX": settings.n_ctx}.items()}


def test_answer_cites_the_right_file_and_page(running_stack, corpus):
    answer = running_stack.ask("How often must the Zephyr-9 pump be serviced?", collection="plant")
    assert "42" in answer.answer
    assert not answer.abstained
    assert answer.citations, answer.answer
    top = answer.citations[0]
    assert (top.source, top.page) == (str(corpus / "plant-manual.pdf"), 2)
    assert answer.model.endswith("qwen2.5-0.5b-instruct")
    assert answer.first_token_seconds is not None and answer.first_token_seconds <= answer.seconds


def test_cli_ask_json_through_the_stack(running_stack, corpus):
    env = {**os.environ, **stack_env(running_stack.settings)}
    result = subprocess.run(
        [sys.executable, "-m", "docstack.cli", "ask", "What does the canteen serve on Fridays?",
         "--collection", "plant", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"answer", "citations", "model", "abstained", "seconds", "first_token_seconds", "safety",
                           "notices", "wait_seconds", "unsupported"}
    assert 0 < answer["first_token_seconds"] <= answer["seconds"]
    assert answer["safety"] == {"blocked": False, "stage": None, "category": None, "shield": None, "redactions": 0,
                                "dropped_chunks": 0}
    assert answer["notices"] == []  # the router's: nothing left out, no fallback
    assert "soup" in answer["answer"].lower()
    assert answer["citations"][0]["source"] == str(corpus / "canteen.md")
    assert answer["citations"][0]["page"] is None
    assert set(answer["citations"][0]) == {"n", "chunk_id", "source", "page", "text", "page_label"}


def test_the_model_server_finishes_every_request_it_is_given_at_once(running_stack):
    """llama-cpp-python's server used to cut the answer in progress short (an early [DONE], no
    finish reason) whenever another request came in; docstack starts it so that requests queue."""
    import httpx

    def finish_reasons(question: str) -> list:
        body = {"model": running_stack.settings.model_alias, "max_tokens": 24, "stream": True,
                "messages": [{"role": "user", "content": question}]}
        with httpx.stream("POST", running_stack.settings.model_url + "/chat/completions", json=body,
                          timeout=120) as response:
            return [json.loads(line[6:])["choices"][0].get("finish_reason")
                    for line in response.iter_lines() if line.startswith("data: {")]

    questions = ["Name three colours.", "Count from one to five.", "Say hello in French."]
    with ThreadPoolExecutor(len(questions)) as pool:
        streams = list(pool.map(finish_reasons, questions))
    assert all(reasons and reasons[-1] in ("stop", "length") for reasons in streams), streams


def test_questions_asked_at_once_all_get_their_answers(running_stack, corpus):
    """Several `docstack ask` at once against the real embedded stack: each waits its turn and
    gets its own cited answer (they used to come back empty, reported as abstentions)."""
    env = {**os.environ, **stack_env(running_stack.settings)}
    questions = {"How often must the Zephyr-9 pump be serviced?": "42",
                 "What does the canteen serve on Fridays?": "soup",
                 "Where are the emergency exits of Building C?": "north",
                 "Which pump needs servicing every 42 days?": "zephyr"}
    procs = [subprocess.Popen([sys.executable, "-m", "docstack.cli", "ask", q, "--collection", "plant", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for q in questions]
    results = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), [err for _, err in results]
    answers = [json.loads(out) for out, _ in results]
    for (question, expected), answer in zip(questions.items(), answers):
        assert answer["answer"].strip() and not answer["abstained"], (question, answer)
        assert expected in answer["answer"].lower() and answer["citations"], (question, answer)
    waits = sorted(answer["wait_seconds"] for answer in answers)
    assert waits[-1] > 1.0, waits  # the last one waited for the others
    assert all(a["wait_seconds"] <= a["seconds"] for a in answers)


def test_up_again_reuses_the_running_services(running_stack):
    before = {s.pid for name, s in running_stack.status().services.items() if name in ("model", "stack")}
    running_stack.up(with_ui=False)
    after = {s.pid for name, s in running_stack.status().services.items() if name in ("model", "stack")}
    assert before == after and None not in after


def test_port_in_use_is_a_one_line_error(tmp_path, running_stack):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ds = DocStack(Settings(home=tmp_path, model_port=port, stack_port=free_port(),
                               gguf=running_stack.settings.gguf))
        with pytest.raises(DocstackError, match=f"port {port} .* already in use"):
            ds.up(with_ui=False)


def test_missing_model_file_is_a_clear_error(tmp_path):
    ds = DocStack(Settings(home=tmp_path, gguf=tmp_path / "nope.gguf", model_port=free_port(),
                           stack_port=free_port()))
    with pytest.raises(DocstackError, match="nope.gguf does not exist"):
        ds.up(with_ui=False)


def ask_in_web_page(running_stack, monkeypatch, question: str):
    """The web app (AppTest) on the running stack, `question` asked in collection plant."""
    from streamlit.testing.v1 import AppTest

    for key, value in stack_env(running_stack.settings).items():
        monkeypatch.setenv(key, value)
    page = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180)
    page.run()
    page.sidebar.selectbox[0].set_value("plant").run()
    page.chat_input[0].set_value(question).run()
    assert not page.exception, page.exception
    return page


def test_web_page_answers_with_file_and_page(running_stack, corpus, monkeypatch):
    page = ask_in_web_page(running_stack, monkeypatch, "How often must the Zephyr-9 pump be serviced?")
    cards = [m.value for m in page.markdown if m.value.startswith("**[")]
    # Passages are numbered in document order, so the cited one need not be [1].
    assert cards and re.fullmatch(r"\*\*\[\d\] plant-manual\.pdf\*\* · page 2", cards[0]), cards
    assert any("42" in m.value for m in page.markdown)


def test_docstack_up_during_an_answer_leaves_the_model_server_answering(running_stack):
    """Issue 16: llama-cpp-python serves `/v1/models` only between answers, so a health check on it
    timed out during one, and `docstack up` took the busy model server for a dead one and restarted
    it, cutting the answer short."""
    import httpx

    before = running_stack.status().services["model"].pid
    body = {"model": running_stack.settings.model_alias, "max_tokens": 200, "stream": True,
            "messages": [{"role": "user", "content": "Tell a long story about a water pump."}]}
    with httpx.stream("POST", running_stack.settings.model_url + "/chat/completions", json=body,
                      timeout=120) as response:
        events = (json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {"))
        reasons = [next(events)["choices"][0].get("finish_reason")]
        running_stack.up(with_ui=False)  # while the model server is writing
        busy = running_stack.status().services["model"]
        reasons += [event["choices"][0].get("finish_reason") for event in events]
    assert busy.healthy and busy.pid == before
    assert reasons[-1] in ("stop", "length") and len(reasons) > 10, reasons


def test_a_model_server_that_dies_mid_answer_is_named_in_one_line(running_stack, corpus, monkeypatch):
    """A cut answer is never an abstention: `docstack ask` exits 2 with one line naming the stopped
    model server, the Python API raises it, and the web app's chat shows it."""
    import signal

    env = {**os.environ, **stack_env(running_stack.settings)}
    question = "Describe the safety briefing, the pump maintenance schedule and the emergency exits in detail."
    asking = subprocess.Popen([sys.executable, "-m", "docstack.cli", "ask", question, "--collection", "plant"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        first = asking.stdout.read(1)  # the answer has begun
        os.kill(running_stack.status().services["model"].pid, signal.SIGKILL)
        out, err = asking.communicate(timeout=120)
        assert first and asking.returncode == 2, (first + out, err)
        assert err.decode().count("\n") == 1 and "the model server has stopped (its log: " in err.decode(), err
        with pytest.raises(DocstackError, match=r"^no model could answer: the model server has stopped .*docstack up"):
            running_stack.ask("How often must the Zephyr-9 pump be serviced?", collection="plant")
        page = ask_in_web_page(running_stack, monkeypatch, "How often must the Zephyr-9 pump be serviced?")
        assert [e.value for e in page.error if "the model server has stopped" in e.value], [e.value for e in page.error]
    finally:
        asking.kill()
        running_stack.up(with_ui=False)  # the model server again, for the tests after this one
