from __future__ import annotations

from docstack import DocStack

import numpy as np
import pytest

from docstack.console import DocstackError
from docstack.rag.retrieve import Filters, fuse
from tests.pdfs import write_pdf


@pytest.fixture
def library(docstack, tmp_path):
    write_pdf(tmp_path / "pump.pdf", [
        "The centrifugal pump moves water through the cooling circuit.",
        "Fault code QX-4711 means the impeller is blocked by debris.",
        "Lubricate the bearings of the pump every three months.",
    ])
    (tmp_path / "garden.md").write_text(
        "# Garden\n\n## Roses\n\nRoses need pruning in early spring before new growth starts.\n\n"
        "## Watering\n\nWater tomatoes deeply twice a week during dry summer weeks.\n")
    (tmp_path / "garden-copy.md").write_text(
        "# Copy\n\nRoses need pruning in early spring before new growth starts.\n")
    docstack.ingest([tmp_path])
    return tmp_path


def test_keyword_mode_finds_exact_codes_and_hybrid_keeps_them(docstack, library):
    [top] = docstack.search("QX-4711", k=1, mode="keyword")
    assert "QX-4711" in top.text and top.page == 2
    assert "QX-4711" in docstack.search("what does QX-4711 mean", k=1, mode="hybrid")[0].text


def test_dense_mode_finds_paraphrases(docstack, library):
    [top] = docstack.search("when should I cut back my flowers", k=1, mode="dense")
    assert "pruning" in top.text


def test_scores_are_cosine_similarities_in_every_mode(docstack, library, embedder):
    query = "how often to grease the bearings"
    for mode in ("dense", "keyword", "hybrid"):
        hits = docstack.search(query, k=3, mode=mode)
        texts = [h.text for h in hits]
        expected = embedder.embed(texts) @ embedder.embed([query])[0]
        assert np.allclose([h.score for h in hits], expected, atol=1e-3), mode


def test_near_duplicates_are_returned_once(docstack, library):
    hits = docstack.search("pruning roses in spring", k=5, mode="hybrid")
    assert sum("Roses need pruning" in h.text for h in hits) == 1


def test_filters_on_source_and_pages(docstack, library):
    hits = docstack.search("pump", k=5, filters=Filters.parse(source="pump.pdf", pages="2-3"))
    assert hits and {h.page for h in hits} <= {2, 3} and all(h.source.endswith("pump.pdf") for h in hits)
    assert all(h.source.endswith(".md") for h in docstack.search("pump", k=5, filters=Filters.parse(source="*.md")))
    with pytest.raises(DocstackError, match="not a valid range"):
        Filters.parse(pages="5-2")


def test_fusion_rewards_agreement_and_keeps_single_lists():
    dense = [(1, 0.9), (3, 0.8), (2, 0.5)]
    keyword = [(3, 12.0), (1, 11.0), (4, 10.0)]
    assert fuse(dense, keyword)[:2] == [3, 1]  # found by both: 0.875 and 0.75; 2 and 4 score 0
    assert fuse(dense, keyword, dense_weight=1.0)[:3] == [1, 3, 2]
    assert fuse([(7, 0.3), (8, 0.2)], []) == [7, 8]


def test_cross_encoder_reranking_decides_the_order(docstack, library, tmp_path, embedder):
    """No cross-encoder ships offline, so the test builds a tiny one with random weights: the real
    loading and scoring path runs, and the hits must come back in the reranker's order."""
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification

    from docstack.rag.rerank import CrossEncoderReranker

    model_dir = tmp_path / "tiny-cross-encoder"
    config = BertConfig(vocab_size=embedder.model.tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(model_dir)
    embedder.model.tokenizer.save_pretrained(model_dir)
    reranker = CrossEncoderReranker(model_dir)
    reranking = DocStack(docstack.settings.model_copy(update={"reranker": model_dir}), embedder=embedder)
    query = "pump maintenance"
    hits = reranking.search(query, k=4, mode="hybrid")
    expected = CrossEncoder(str(model_dir)).predict([(query, h.text) for h in hits])
    assert list(reranker.scores(query, [h.text for h in hits])) == pytest.approx(list(expected), abs=1e-5)
    assert list(expected) == sorted(expected, reverse=True)
    with pytest.raises(DocstackError, match="not a model folder"):
        CrossEncoderReranker(tmp_path)
