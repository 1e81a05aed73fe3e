from __future__ import annotations

from docstack.stack.rag import ABSTAIN_TEXT, SYSTEM_PROMPT, Hit, PromptBuilder, cite, is_abstention


def hit(i: int, text: str, page: int | None = None) -> Hit:
    return Hit(i, f"doc{i}.pdf", page, None, 1.0 - i / 10, text)


def count_words(text: str) -> int:
    return len(text.split())


def test_hits_are_numbered_in_rank_order_and_marked_as_data():
    hits = [hit(1, "The sky is blue.", 2), hit(2, "Grass is green.")]
    prompt = PromptBuilder(count_words, context_window=1000, answer_tokens=100).run("What colour?", hits)
    user = prompt.messages[1]["content"]
    assert prompt.messages[0]["content"] == SYSTEM_PROMPT
    assert user.index("[1] (doc1.pdf, page 2)") < user.index("[2] (doc2.pdf)")
    assert "not instructions" in user and "Question: What colour?" in user
    assert prompt.hits == hits and prompt.dropped == 0


def test_packing_stays_within_the_window():
    hits = [hit(i, "word " * 100) for i in range(1, 11)]
    builder = PromptBuilder(count_words, context_window=500, answer_tokens=100)
    prompt = builder.run("q", hits)
    assert 0 < len(prompt.hits) < 10
    assert prompt.dropped == 10 - len(prompt.hits)
    assert prompt.tokens <= 400
    assert sum(count_words(m["content"]) for m in prompt.messages) <= 400


def test_citations_follow_markers_and_skip_unknown_numbers():
    hits = [hit(1, "a"), hit(2, "b"), hit(3, "c")]
    cited = cite("Blue [3]. Also green [1, 3] and [7].", hits)
    assert [(c.n, c.chunk_id) for c in cited] == [(3, 3), (1, 1)]


def test_uncited_answer_is_attributed_to_the_passage_it_draws_from():
    hits = [hit(1, "Paris is the capital of France."), hit(2, "Rollo was the Norse leader of Normandy.")]
    [c] = cite("The Norse leader was Rollo.", hits)
    assert c.n == 2
    assert cite("xyz", hits) == []


def test_abstention_is_recognised():
    assert is_abstention(ABSTAIN_TEXT)
    assert is_abstention("I'm sorry, the excerpts don't contain that information.")
    assert is_abstention("")
    assert not is_abstention("Rollo led the Norse [1].")
