"""Optional cross-encoder reranking of retrieved chunks (`DOCSTACK_RERANKER=/path/to/model`).

No cross-encoder's weights ship in a PyPI package today, so none is on by default; any
sentence-transformers CrossEncoder folder a user has (for example ms-marco-MiniLM-L-6-v2) works."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from docstack.console import DocstackError


class CrossEncoderReranker:
    def __init__(self, path: Path):
        if not (path / "config.json").is_file():
            raise DocstackError(f"reranker {path} is not a model folder (no config.json); check DOCSTACK_RERANKER")
        self.path = path

    @cached_property
    def model(self):
        from sentence_transformers import CrossEncoder

        return CrossEncoder(str(self.path), device="cpu")

    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.model.predict([(query, p) for p in passages], show_progress_bar=False),
                          dtype=np.float32).reshape(len(passages), -1)[:, 0]
