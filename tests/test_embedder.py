from __future__ import annotations

import numpy as np

from docstack.ingest.bert_numpy import NumpyBertEncoder, supports
from docstack.ingest.embedder import SMALL_BATCH, Embedder, resolve_model_path

TEXTS = [
    "How often must the pump be serviced?",
    "docstack answers questions about your documents and cites the page.",
    "x",
    "Ünïcödé text, numbers 12345 and punctuation!?",
    "word " * 400,  # longer than the model's 256-token window: truncated the same way
]


def test_numpy_encoder_matches_sentence_transformers(embedder):
    path = resolve_model_path(embedder.name)
    assert supports(path)
    fast = NumpyBertEncoder(path).encode(TEXTS)
    reference = embedder.model.encode(TEXTS, normalize_embeddings=True)
    cosine = np.sum(fast * reference, axis=1)
    assert fast.shape == reference.shape == (len(TEXTS), 384)
    assert cosine.min() > 0.9999, cosine


def test_numpy_path_serves_small_batches_until_torch_is_loaded():
    fresh = Embedder("sentence-transformers/all-MiniLM-L6-v2")
    texts = [f"sentence number {i} about pumps and valves" for i in range(SMALL_BATCH + 1)]
    small = fresh.embed(texts[:3])
    assert "model" not in fresh.__dict__, "a small batch should not load torch"
    large = fresh.embed(texts)
    assert "model" in fresh.__dict__
    assert np.allclose(large[:3], small, atol=1e-4)
    assert np.allclose(np.linalg.norm(large, axis=1), 1.0, atol=1e-5)
