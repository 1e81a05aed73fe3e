"""User-facing output goes through these two consoles: results on stdout, progress and
errors on stderr (so ``--json`` output stays clean). Diagnostics go through ``logging``."""

from __future__ import annotations

import logging
import os
import warnings

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class DocstackError(Exception):
    """An expected failure: shown to the user as one line, never as a traceback."""


class AuthError(DocstackError):
    """A missing, expired, forged or foreign token: HTTP 401, and exit 2 on the command line."""


def quiet_libraries() -> None:
    """Silence the chatter of Hugging Face and tokenizers; docstack reports what matters."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|torch|sentence_transformers)")
    for name in ("transformers", "sentence_transformers", "httpx", "faiss"):
        logging.getLogger(name).setLevel(logging.ERROR)
