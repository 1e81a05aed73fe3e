"""The one typed settings object. Every knob reads from here; environment variables
prefixed ``DOCSTACK_`` override the defaults (``DOCSTACK_HOME``, ``DOCSTACK_STACK_PORT``...)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".docstack"


def without_password(url: str) -> str:
    """A URL fit to print: `scheme://user:***@host/...`."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCSTACK_", extra="ignore", populate_by_name=True)

    home: Path = Field(default_factory=_default_home, description="data directory: indexes, models, logs, pids")
    # Models docstack assembles or makes on first use: the embedded GGUF, the static embedding
    # model, the injection classifier's weights. Several homes may share one folder.
    models_dir: Path = Field(default=None, description="where models are kept (default: $DOCSTACK_HOME/models)",
                             validate_default=False)
    collection: str = "default"
    # Where collections live: sqlite:///path (default: $DOCSTACK_HOME/collections), or a PostgreSQL
    # database with pgvector: postgresql://user:password@host:port/database.
    index_url: str | None = None
    # PostgreSQL only: connections per process, the keyword index's text search configuration (for
    # collections created from now on) and the HNSW index's build and search parameters.
    index_pool_size: int = 4
    index_text_language: str = "english"
    index_hnsw_m: int = 32
    index_hnsw_ef_construction: int = 128
    index_hnsw_ef_search: int = 100

    # Ingestion. 200 word pieces stays under all-MiniLM-L6-v2's 256-token limit with room
    # for the special tokens, so nothing is cut silently at embedding time.
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    chunk_tokens: int = 200
    chunk_overlap: int = 40
    # Small batches pad less: 16 embeds ~20% faster than 64 on two cores (bench/bench_ingest.py).
    embed_batch: int = 16
    # "auto": bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX): ingestion about 2x
    # faster than float32 there, vectors within cosine 0.9999 of it; float32 elsewhere.
    embed_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    write_batch: int = 512
    # A Ray cluster to parse, chunk and embed files on (host:port of its head, ray://host:port, or
    # "auto"); this process still writes. None: worker processes on this machine.
    ray_address: str | None = None

    # Answering. `top_k` passages for a search; `ask_k` packed into an answer's prompt: the small
    # embedded model reads prompts at ~90 tokens/s here, so each 200-token passage costs ~2 s.
    top_k: int = 5
    ask_k: int = 3
    search_mode: str = "hybrid"  # dense, keyword or hybrid
    reranker: Path | None = Field(default=None, description="a cross-encoder model folder to rerank with")
    # Chunks whose cosine similarity to the question is below this are not evidence; with none
    # left, docstack abstains without asking the model (which would answer from its own memory).
    # Calibrated on squad-dev: the best chunk of 99% of answerable questions scores >= 0.27,
    # off-topic questions score 0.15-0.26.
    min_score: float = 0.25
    # An answer whose new words are in none of its passages is given as "not found" (rag/grounding.py);
    # off: every reply the model writes is given, its unsupported sentences marked.
    answer_grounding: bool = True
    max_answer_tokens: int = 384
    preview_dpi: int = 80  # the web app's pictures of cited PDF pages
    temperature: float = 0.0

    # Safety shields on every ask (input, retrieved chunks, output); see safety/policy.yaml.
    safety: bool = True
    safety_policy: Path | None = Field(default=None, description="a policy YAML instead of safety/policy.yaml")
    safety_model: Path | None = Field(default=None, description="an injection model made by `docstack safety train` "
                                      "instead of the shipped safety/data/injection-model.npz")
    safety_names: bool = Field(default=True, description="detect people's names with spaCy (loads in ~4 s)")
    # A Llama Guard shield registered in the stack (ollama/vllm/cloud profiles), e.g. "llama-guard".
    safety_llama_guard: str | None = None

    # Services started by `docstack up`.
    profile: str = "embedded"  # embedded, ollama, vllm or cloud (see stack/profiles.py)
    model: str | None = Field(default=None, description="the model to answer with first (an id from `docstack models`)")
    # How long a model may take to start answering before the router falls back to the next one.
    # Time spent waiting for a turn at a busy model server (below) does not count.
    model_timeout: float = 180.0
    # Requests the model server answers at once; docstack queues the others first come, first
    # served, across its processes, and shows the wait. None: 1 for the embedded llama.cpp
    # server, which generates one answer at a time; no limit for Ollama, vLLM and cloud servers.
    model_slots: int | None = Field(default=None, ge=0)
    queue_timeout: float = 1800.0  # the longest a question waits for its turn before failing
    host: str = "127.0.0.1"
    stack_port: int = 8321
    model_port: int = 8322
    ui_port: int = 8501
    # The default: right on 0.61 / 0.86 of answerable questions (SQuAD / Python docs) against the
    # 0.5B model's 0.52 / 0.64, every citation figure better, for about 1.5 s more an answer on
    # 2 cores (docs/evaluation.md). The 0.5B model is served beside it: pick it per question.
    model_alias: str = Field(default="qwen2.5-coder-1.5b-instruct", description="the embedded default model: "
                             "qwen2.5-coder-1.5b-instruct, qwen2.5-0.5b-instruct (faster, less often right), or a "
                             "name for DOCSTACK_GGUF")
    gguf: Path | None = Field(default=None, description="a GGUF to serve instead of the shipped models")
    n_ctx: int = 4096
    threads: int = Field(default_factory=lambda: os.cpu_count() or 2)
    startup_timeout: float = 120.0
    request_timeout: float = 300.0
    stack_endpoint: str | None = Field(default=None, description="a Llama Stack server started elsewhere (compose)")

    # Model servers behind the other profiles. They take the names their own tools use.
    ollama_url: str = Field(default="http://127.0.0.1:11434",
                            validation_alias=AliasChoices("DOCSTACK_OLLAMA_URL", "OLLAMA_URL"))
    vllm_url: str = Field(default="http://127.0.0.1:8000/v1", validation_alias=AliasChoices("DOCSTACK_VLLM_URL", "VLLM_URL"))
    vllm_api_token: SecretStr | None = Field(default=None,
                                             validation_alias=AliasChoices("DOCSTACK_VLLM_API_TOKEN", "VLLM_API_TOKEN"))
    # Any OpenAI-compatible hosted provider: Together (default), Fireworks
    # (https://api.fireworks.ai/inference/v1 with FIREWORKS_API_KEY), OpenAI, ...
    cloud_url: str = "https://api.together.xyz/v1"
    cloud_key_env: str = "TOGETHER_API_KEY"

    # Identity (on-prem): set the OIDC provider's issuer and every request needs a signed-in user;
    # unset (the default), everything runs as one local admin. See docs/enterprise.md.
    oidc_issuer: str | None = None
    oidc_audience: str = "docstack"  # the client id that the ID tokens are issued for
    oidc_jwks_url: str | None = Field(default=None, description="the provider's keys (default: read from the "
                                      "issuer's /.well-known/openid-configuration)")
    oidc_teams_claim: str = "groups"
    oidc_roles_claim: str = "roles"
    # The web app signs people in as this client (client id: oidc_audience) with the
    # authorization-code flow; the secret reaches only the sign-in file `docstack up` writes.
    oidc_client_secret: SecretStr | None = None
    # Signs the web app's sign-in cookies; replicas must share it. Default: made once and kept in
    # $DOCSTACK_HOME/run/ui-cookie-secret (enough for replicas sharing DOCSTACK_HOME).
    ui_cookie_secret: SecretStr | None = None
    # "groups" too for Dex (it sends the groups claim only when asked for it).
    oidc_scopes: str = "openid profile email"
    oidc_redirect_uri: str | None = Field(default=None, description="where the provider sends people back "
                                          "after sign-in (default: the web app's URL + /oauth2callback; set it "
                                          "behind a proxy)")
    # The signed-in user's ID token, for the CLI and scripts.
    token: SecretStr | None = None
    audit: bool = Field(default=True, description="one JSON line per signed-in request in logs/audit.jsonl")

    # Operations: OpenTelemetry traces and metrics over OTLP/HTTP to a collector's base URL (e.g.
    # http://otel-collector:4318); unset, telemetry is off. OpenTelemetry's own variable works too.
    otel_endpoint: str | None = Field(default=None, validation_alias=AliasChoices("DOCSTACK_OTEL_ENDPOINT",
                                                                                "OTEL_EXPORTER_OTLP_ENDPOINT"))

    @model_validator(mode="after")
    def _under_home(self) -> Settings:
        if self.models_dir is None:
            self.models_dir = self.home / "models"
        if self.gguf is not None and "model_alias" not in self.model_fields_set:
            # Another GGUF answers under its own name (`ask --json` named the shipped model instead),
            # without its quantisation: qwen2.5-0.5b-instruct-q4_k_m.gguf is qwen2.5-0.5b-instruct.
            self.model_alias = re.sub(r"[-.](?:i?q\d\w*|f16|f32|bf16)$", "", self.gguf.stem.lower())
        return self

    def cloud_api_key(self) -> str | None:
        """Read from the environment on use and never stored, so it cannot reach a file or a log."""
        return os.environ.get(self.cloud_key_env) or None

    def to_env(self) -> dict[str, str]:
        """These settings as DOCSTACK_* variables, for the processes `docstack up` starts."""
        env = {}
        for name, value in self.model_dump(exclude_none=True).items():
            if not isinstance(value, SecretStr):
                env[f"DOCSTACK_{name.upper()}"] = str(value)
        return env

    @property
    def identity(self) -> bool:
        """Whether requests need a signed-in user (an OIDC issuer is configured)."""
        return bool(self.oidc_issuer)

    @property
    def stack_url(self) -> str:
        return self.stack_endpoint or f"http://{self.host}:{self.stack_port}"

    @property
    def model_url(self) -> str:
        return f"http://{self.host}:{self.model_port}/v1"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def model_id(self) -> str:
        """The id under which the stack serves the embedded model."""
        return f"llamacpp/{self.model_alias}"

    @property
    def answer_slots(self) -> int:
        """`model_slots` with the profile's default filled in (0: no limit)."""
        if self.model_slots is not None:
            return self.model_slots
        return 1 if self.profile == "embedded" else 0

    @property
    def collections_dir(self) -> Path:
        return self.home / "collections"

    @property
    def index_location(self) -> str:
        """Where collections live, for messages: the index URL without its password, or the folder."""
        return without_password(self.index_url) if self.index_url else str(self.collections_dir)

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"



def get_settings(**overrides) -> Settings:
    return Settings(**overrides)
