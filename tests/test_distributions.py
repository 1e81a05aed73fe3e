"""Every profile end to end through a real Llama Stack server: Ollama, vLLM and a cloud provider
are fakes that speak their real HTTP protocols (none can run here); the embedded profile is the
real llama.cpp server with the shipped Qwen model."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from docstack import DocStack, Settings
from docstack.console import DocstackError
from tests.conftest import free_port, run_cli
from tests.fakes import FakeOllama, FakeOpenAI

pytestmark = pytest.mark.stack

BOILER = "The boiler room is on level minus two, behind the loading dock. Access needs a red badge.\n"


def start(tmp_path: Path, embedder, **settings) -> DocStack:
    ds = DocStack(Settings(home=tmp_path / "home", stack_port=free_port(), ui_port=free_port(), **settings),
                  embedder=embedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "facilities.md").write_text("# Facilities\n\n" + BOILER)
    ds.ingest([docs])
    return ds


@pytest.fixture
def ollama():
    fake = FakeOllama()
    yield fake
    fake.close()


def test_ollama_profile_answers_streams_and_falls_back(tmp_path, embedder, ollama):
    ds = start(tmp_path, embedder, profile="ollama", ollama_url=ollama.url, model_timeout=3)
    ds.pull_models(lambda p: None)
    ds.up(with_ui=False)
    try:
        assert all(s.usable for s in ds.models()), [(s.spec.id, s.reason) for s in ds.models()]

        stream = ds.stream("Where is the boiler room?")
        pieces = list(stream)
        answer = stream.answer
        assert len(pieces) >= 2  # shown sentence by sentence (the output shield checks each one)
        assert answer.model == "ollama/llama3.2:3b-docstack-8k" and not answer.notices
        assert "level minus two" in answer.answer and answer.citations[0].source.endswith("facilities.md")
        chats = [body for path, body in ollama.requests if path == "/v1/chat/completions"]
        assert "red badge" in chats[-1]["messages"][0]["content"]  # the excerpt reached Ollama
        raw = list(ds.client.chat_stream(answer.model, [{"role": "user", "content": "hi"}], 50, 0.0))
        assert len(raw) > 3  # the stack streams Ollama's reply word by word

        ollama.models["llama3.2:3b-docstack-8k"].delay = 6  # slower than model_timeout
        answer = ds.ask("Where is the boiler room?")
        assert answer.model == "ollama/llama3.2:1b-docstack-8k"
        assert answer.notices == ["ollama/llama3.2:3b-docstack-8k did not answer within 3s; "
                                  "llama3.2-1b answered instead"]

        ollama.models["llama3.2:3b-docstack-8k"].delay = 0
        ollama.models["llama3.2:3b-docstack-8k"].fail = True  # HTTP 500
        answer = ds.ask("Where is the boiler room?")
        assert answer.model == "ollama/llama3.2:1b-docstack-8k" and "llama3.2-1b answered instead" in answer.notices[0]

        del ollama.models["llama3.2:1b-docstack-8k"]  # removed from Ollama behind the stack's back
        with pytest.raises(DocstackError, match="no model could answer"):
            ds.ask("Where is the boiler room?", model="llama3.2-1b")
    finally:
        ds.down()


def test_vllm_profile_sends_images_to_a_vision_model(tmp_path, embedder):
    vllm = FakeOpenAI()
    vllm.add("meta-llama/Llama-3.2-3B-Instruct")
    vllm.add("meta-llama/Llama-3.2-11B-Vision-Instruct")
    ds = start(tmp_path, embedder, profile="vllm", vllm_url=vllm.url + "/v1")
    picture = tmp_path / "badge.png"
    picture.write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="))
    ds.up(with_ui=False)
    try:
        usable = {s.spec.id for s in ds.models() if s.usable}
        assert usable == {"llama3.2-11b-vision", "llama3.2-3b"}  # 90B is not served by this server
        text = ds.ask("Where is the boiler room?")
        assert text.model == "vllm/meta-llama/Llama-3.2-11B-Vision-Instruct"  # catalogue order: first that fits
        seen = ds.ask("Which room is this badge for?", image=picture)
        assert seen.model == "vllm/meta-llama/Llama-3.2-11B-Vision-Instruct"
        content = [b for p, b in vllm.requests if p == "/v1/chat/completions"][-1]["messages"][-1]["content"]
        assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
        with pytest.raises(DocstackError, match="does not take images"):
            ds.ask("Which room is this badge for?", image=picture, model="llama3.2-3b")
    finally:
        ds.down()
        vllm.close()


def test_an_empty_or_cut_off_answer_is_an_error_never_an_abstention(tmp_path, embedder):
    vllm = FakeOpenAI()
    vision = vllm.add("meta-llama/Llama-3.2-11B-Vision-Instruct", empty=True)
    text = vllm.add("meta-llama/Llama-3.2-3B-Instruct")
    ds = start(tmp_path, embedder, profile="vllm", vllm_url=vllm.url + "/v1")
    ds.up(with_ui=False)
    try:
        answer = ds.ask("Where is the boiler room?")  # the first model says nothing: the next one answers
        assert answer.model == "vllm/meta-llama/Llama-3.2-3B-Instruct" and not answer.abstained
        assert answer.notices == ["vllm/meta-llama/Llama-3.2-11B-Vision-Instruct returned an empty answer "
                                  "(finish reason: stop); llama3.2-3b answered instead"]
        vision.empty, vision.cut, text.cut = False, True, True  # both stop after one word, as if interrupted
        with pytest.raises(DocstackError, match="stopped answering mid-way"):
            ds.ask("Where is the boiler room?", model="llama3.2-3b")
        result = run_cli(["ask", "Where is the boiler room?", "--json"], tmp_path / "home", DOCSTACK_PROFILE="vllm",
                         VLLM_URL=vllm.url + "/v1", DOCSTACK_STACK_PORT=str(ds.settings.stack_port))
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and "stopped answering mid-way" in result.stderr
    finally:
        ds.down()
        vllm.close()


def test_cloud_profile_key_reaches_the_provider_and_no_file(tmp_path, embedder, monkeypatch):
    key = "sk-cloud-test-5f1d2c"
    cloud = FakeOpenAI(api_key=key)
    cloud.add("meta-llama/Llama-3.2-3B-Instruct-Turbo")
    monkeypatch.setenv("DOCSTACK_TEST_CLOUD_KEY", key)
    ds = start(tmp_path, embedder, profile="cloud", cloud_url=cloud.url + "/v1", cloud_key_env="DOCSTACK_TEST_CLOUD_KEY")
    ds.up(with_ui=False)
    try:
        answer = ds.ask("Where is the boiler room?")
        assert answer.model == "cloud/meta-llama/Llama-3.2-3B-Instruct-Turbo"
        assert "level minus two" in answer.answer
    finally:
        ds.down()
        cloud.close()
    leaked = [p for p in (tmp_path / "home").rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == []  # not in the run config, the stack's logs or its stores


def test_embedded_profile_packs_less_when_the_window_is_full_and_says_so(running_stack, tmp_path):
    ds = running_stack
    docs = tmp_path / "long"
    docs.mkdir()
    filler = " ".join(f"Section {i} describes maintenance schedule item {i} for the north wing boilers, "
                      "including valves, pumps and pressure checks." for i in range(400))
    (docs / "maintenance.txt").write_text(filler + "\n\n" + BOILER)
    ds.ingest([docs], collection="long")
    answer = ds.ask("Where is the boiler room and which badge is needed?", collection="long", k=20)
    assert answer.model == "llamacpp/qwen2.5-0.5b-instruct"
    assert answer.notices and answer.notices[0].startswith("packed ")
    assert answer.prompt_tokens <= ds.settings.n_ctx - ds.settings.max_answer_tokens
    with pytest.raises(DocstackError, match="not in this profile's catalogue"):
        ds.ask("Where is the boiler room?", collection="long", model="llama3.2-3b")
