"""What keyword (BM25) search takes from a query, the same for every backend: its words, without
stopwords, so that backends rank on the same terms."""

from __future__ import annotations

STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not of off
on once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves""".split())

# Keyword search scores at most about this many (chunk, word) matches: the rarest query words
# first. Below it nothing changes; beyond it only words found in very many chunks are left out.
KEYWORD_POSTINGS_BUDGET = 10_000


def query_terms(query: str) -> list[str]:
    """The query's words (letters and digits), stopwords left out unless nothing else is left:
    stopwords barely move BM25 but make the engine score nearly every chunk of a large collection."""
    words = "".join(c if c.isalnum() else " " for c in query).split()
    return [w for w in words if w.lower() not in STOPWORDS] or words


def rarest_within_budget(counts: dict[str, int], budget: int = KEYWORD_POSTINGS_BUDGET) -> list[str]:
    """The terms of `counts` (term -> chunks holding it) worth scoring: rarest first, while their
    postings fit the budget; always at least one."""
    kept, postings = [], 0
    for term in sorted(counts, key=lambda t: counts[t]):
        if kept and postings + counts[term] > budget:
            break
        kept.append(term)
        postings += counts[term]
    return kept
