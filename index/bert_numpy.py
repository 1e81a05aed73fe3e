"""A NumPy forward pass for small BERT sentence encoders (all-MiniLM-L6-v2 and kin).

Why: importing torch, transformers and sentence-transformers costs about 9 s on these machines,
which would make every `docstack search` or `ask` wait for it to embed one short query. This
reads the same safetensors weights and tokenizer and computes the same mean-pooled, normalised
embedding (tests hold it to the sentence-transformers output) in milliseconds after a 0.2 s load.
Bulk ingestion still runs on sentence-transformers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def supports(path: str | Path) -> bool:
    """True for a local sentence-transformers folder holding a BERT encoder with mean pooling
    followed by normalisation, which is all this module implements."""
    root = Path(path)
    try:
        config = json.loads((root / "config.json").read_text())
        pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((root / "modules.json").read_text())]
    except (OSError, ValueError, KeyError):
        return False
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and pooling.get("pooling_mode_mean_tokens") is True
        and modules == ["Transformer", "Pooling", "Normalize"]
        and (root / "model.safetensors").is_file()
        and (root / "tokenizer.json").is_file()
    )


class NumpyBertEncoder:
    def __init__(self, path: str | Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = Path(path)
        config = json.loads((root / "config.json").read_text())
        st_config = json.loads((root / "sentence_bert_config.json").read_text())
        self.max_tokens = int(st_config.get("max_seq_length", config["max_position_embeddings"]))
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        # Dense weights are stored transposed and contiguous: x @ W is then one plain GEMM.
        self.w = {k: np.ascontiguousarray(v.T if k.endswith(".dense.weight") or k.endswith(("query.weight",
                  "key.weight", "value.weight")) else v, dtype=np.float32)
                  for k, v in load_file(str(root / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        from threadpoolctl import ThreadpoolController

        self._threads = ThreadpoolController()

    def _one_thread(self):
        return self._threads.limit(limits=1, user_api="blas")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        # One BLAS thread: these matrices are small, and a multi-threaded BLAS spends more time
        # waking and syncing threads (worse on a busy machine) than multiplying.
        with self._one_thread():
            return np.vstack([self._encode_one(e.ids) for e in self.tokenizer.encode_batch(list(texts))])

    def _encode_one(self, ids: list[int]) -> np.ndarray:
        w, n = self.w, len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            x = self._norm(x + self._attention(x, p + "attention."), p + "attention.output.LayerNorm")
            hidden = _gelu(self._dense(x, p + "intermediate.dense"))
            x = self._norm(x + self._dense(hidden, p + "output.dense"), p + "output.LayerNorm")
        pooled = x.mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def _attention(self, x: np.ndarray, p: str) -> np.ndarray:
        n, d = x.shape
        h = self.heads

        def split(name: str) -> np.ndarray:
            return self._dense(x, p + "self." + name).reshape(n, h, d // h).transpose(1, 0, 2)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d // h)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(n, d)
        return self._dense(context, p + "output.dense")

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    # Python floats, not NumPy's: a np.float64 scalar would turn every later product into float64,
    # three times slower (NumPy 2 lets only Python scalars keep the array's type).
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
