from __future__ import annotations

import numpy as np

from docstack.index.bert_numpy import NumpyBertEncoder, supports
from docstack.index.embedder import SMALL_BATCH, Embedder, resolve_model_path

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
    assert fast.dtype == np.float32  # float64 creeping in triples the query's cost
    assert cosine.min() > 0.9999, cosine


def test_numpy_path_serves_small_batches_until_torch_is_loaded():
    fresh = Embedder("sentence-transformers/all-MiniLM-L6-v2", precision="float32")
    texts = [f"sentence number {i} about pumps and valves" for i in range(SMALL_BATCH + 1)]
    small = fresh.embed(texts[:3])
    assert "model" not in fresh.__dict__, "a small batch should not load torch"
    large = fresh.embed(texts)
    assert "model" in fresh.__dict__
    assert np.allclose(large[:3], small, atol=1e-4)
    assert np.allclose(np.linalg.norm(large, axis=1), 1.0, atol=1e-5)


STATIC = "docstack/all-MiniLM-L6-v2-static"


def test_static_model_is_distilled_once_and_embeds_by_meaning(tmp_path):
    from pathlib import Path

    models = Path.home() / ".docstack" / "models"  # shared across runs, as the GGUF is
    static = Embedder(STATIC, models_dir=models)
    assert static.path == str(models / "docstack--all-MiniLM-L6-v2-static")
    assert static.dimension == 256
    vectors = static.embed(["How often must the pump be serviced?",
                            "Service the pump every six months.",
                            "The invoice lists three kinds of cheese."])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    assert static.count_tokens(["Service the pump"]) == [3]
    assert "model" not in static.__dict__, "a static model runs without sentence-transformers"


def test_collection_ingested_with_the_static_model_is_searchable(tmp_path):
    from pathlib import Path

    from docstack import DocStack, Settings
    from tests.pdfs import write_pdf

    ds = DocStack(Settings(home=tmp_path / "home", embedding_model=STATIC))
    ds.embedder.models_dir = Path.home() / ".docstack" / "models"
    pages = ["The boiler must be descaled every spring.", "Warranty claims go to the regional office.",
             "The pressure relief valve opens at three bar."]
    write_pdf(tmp_path / "manual.pdf", pages)
    report = ds.ingest([tmp_path / "manual.pdf"])
    assert report.chunks == 3 and not report.errors
    [hit] = ds.search("when does the safety valve release pressure", k=1, mode="dense")
    assert hit.page == 3


def test_bfloat16_bulk_embeddings_match_float32():
    texts = [f"{text} ({i})" for i, text in enumerate(TEXTS * 3)]  # more than SMALL_BATCH: torch's path
    name = "sentence-transformers/all-MiniLM-L6-v2"
    exact = Embedder(name, precision="float32")
    fast = Embedder(name, precision="bfloat16")
    assert not exact.bfloat16 and fast.bfloat16
    exact_vectors, fast_vectors = exact.embed(texts), fast.embed(texts)
    assert not np.allclose(exact_vectors, fast_vectors, atol=1e-6), "bfloat16 was not used"
    cosine = np.sum(exact_vectors * fast_vectors, axis=1)
    assert cosine.min() > 0.999, cosine
